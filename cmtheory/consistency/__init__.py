"""Consistency models on tractable targets: the ideal (zero learning error) recursion of consistency training."""

from cmtheory.consistency.ideal import ct_coefficients, ideal_ct_1d, ideal_ct_error, ideal_ct_gaussian

__all__ = ["ct_coefficients", "ideal_ct_1d", "ideal_ct_error", "ideal_ct_gaussian"]
