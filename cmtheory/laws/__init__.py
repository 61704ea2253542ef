r"""Laws: exact laws on grids and their propagation engine, Gaussian affine laws, the targets'
reference laws, and the Gaussian transition kernels the stochastic samplers draw from.

Samplers (:mod:`cmtheory.samplers`) and metrics (:mod:`cmtheory.metrics`) both stand on this
layer; it imports neither.
"""

from cmtheory.laws.gaussian import gaussian_law
from cmtheory.laws.radial import (
    as_radial_mixture, check_equivariant, check_rotation_invariant, propagate_radial, radial_cdf, radial_hvp, radial_law, radial_markov_law, radial_score,
    radius_span, start_radial_cdf, start_radial_law,
)
from cmtheory.laws.grid import GridLaw, Transition, markov_law_1d, normal_law, propagate, pushforward_law, richardson_law, uniform_grid
from cmtheory.laws.reference import gmm_1d_cdf, gmm_1d_law
from cmtheory.laws.transitions import (
    GaussianTransition, HvpFn, ScoreFn, StepTransitions, ddpm_transition, ddpm_transitions, exact_covariance_transition,
    exact_covariance_transitions, li_icml2024_transitions,
)

__all__ = [
    "GridLaw", "Transition", "uniform_grid", "normal_law", "propagate", "markov_law_1d", "pushforward_law", "richardson_law",
    "gaussian_law", "gmm_1d_cdf", "gmm_1d_law", "GaussianTransition", "ScoreFn", "HvpFn", "StepTransitions", "ddpm_transition",
    "exact_covariance_transition", "ddpm_transitions", "exact_covariance_transitions", "li_icml2024_transitions",
    "as_radial_mixture", "check_rotation_invariant", "check_equivariant", "radial_cdf", "radial_law", "radial_score", "radial_hvp", "propagate_radial",
    "radial_markov_law", "radius_span", "start_radial_cdf", "start_radial_law",
]
