"""Consistency models on tractable targets: the ideal (zero learning error) recursion of
consistency training, the exact zero-learning-error analogues of their statistical rates, and
neural CT, CD, Direct CM and sCM trained against exact teachers."""

from cmtheory.consistency.ideal import ct_coefficients, ideal_ct_1d, ideal_ct_deviation, ideal_ct_error, ideal_ct_gaussian, ideal_ct_radial
from cmtheory.consistency.statistical import (
    atoms_w1_1d,
    empirical_w1_1d,
    empirical_w1_product,
    flow_cdf_1d,
    kde_score_error_1d,
    one_step_w1_1d,
    product_quantization,
    smoothed_cdf,
    smoothed_quantization,
    smoothed_w1_product,
    smoothing_w1_1d,
    smoothing_w1_bound,
)
from cmtheory.consistency.networks import EDMConsistency, TimeMLP, TrigFlowConsistency
from cmtheory.consistency.training import (
    TrainingLog,
    block_means,
    consistency_sample,
    flow_trajectories,
    scm_sample,
    teacher_solve,
    train_consistency,
    train_ct_sequence,
    train_scm,
)

__all__ = [
    "ct_coefficients",
    "ideal_ct_1d",
    "ideal_ct_error",
    "ideal_ct_deviation",
    "ideal_ct_gaussian",
    "ideal_ct_radial",
    "atoms_w1_1d",
    "empirical_w1_1d",
    "empirical_w1_product",
    "flow_cdf_1d",
    "kde_score_error_1d",
    "one_step_w1_1d",
    "product_quantization",
    "smoothed_cdf",
    "smoothed_quantization",
    "smoothed_w1_product",
    "smoothing_w1_1d",
    "smoothing_w1_bound",
    "EDMConsistency",
    "TimeMLP",
    "TrigFlowConsistency",
    "TrainingLog",
    "block_means",
    "consistency_sample",
    "flow_trajectories",
    "scm_sample",
    "teacher_solve",
    "train_consistency",
    "train_ct_sequence",
    "train_scm",
]
