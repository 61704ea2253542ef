"""Samplers: stochastic samplers on the discrete VP chain, probability-flow ODE solvers, exact laws."""

from cmtheory.samplers.ode import (
    ddim,
    ddim_step,
    dpm_solver_2,
    dpm_solver_pp_2m,
    heun,
    karras_grid,
    log_grid,
    reference_flow_map,
)
from cmtheory.samplers.scores import CountingScore, denoiser_from_score, perturbed_score
from cmtheory.samplers.stochastic import (
    GaussianTransition,
    ddpm,
    ddpm_transition,
    exact_covariance,
    exact_covariance_transition,
    hessian_free,
    li_icml2024,
    one_score_reuse,
    run_chain,
)

__all__ = [
    "ddim", "ddim_step", "dpm_solver_2", "dpm_solver_pp_2m", "heun", "karras_grid", "log_grid",
    "reference_flow_map", "CountingScore", "denoiser_from_score", "perturbed_score",
    "GaussianTransition", "ddpm", "ddpm_transition", "exact_covariance", "exact_covariance_transition",
    "hessian_free", "li_icml2024", "one_score_reuse", "run_chain",
]
