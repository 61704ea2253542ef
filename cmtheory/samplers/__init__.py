"""Samplers: stochastic and deterministic samplers on the discrete VP chain (one registry,
:data:`SAMPLERS`), probability-flow ODE solvers, exact laws."""

from cmtheory.samplers.ode import (
    ddim,
    ddim_step,
    dpm_solver_2,
    dpm_solver_pp_2m,
    heun,
    heun_step,
    karras_grid,
    log_grid,
    reference_flow_map,
)
from cmtheory.samplers.chain_ode import heroism, li_icml2024_ode, on_vp_chain
from cmtheory.samplers.registry import SAMPLERS, SamplerSpec, cache_block_rows, sampler_names
from cmtheory.samplers.scores import CountingScore, denoiser_from_score, perturbed_score
from cmtheory.samplers.stochastic import (
    DrawAhead,
    GaussianTransition,
    ddpm,
    ddpm_transition,
    exact_covariance,
    exact_covariance_transition,
    hessian_free,
    li_icml2024,
    li_icml2024_transitions,
    one_score_reuse,
    run_chain,
)

__all__ = [
    "ddim", "ddim_step", "dpm_solver_2", "dpm_solver_pp_2m", "heun", "heun_step", "karras_grid", "log_grid",
    "reference_flow_map", "CountingScore", "denoiser_from_score", "perturbed_score",
    "DrawAhead", "GaussianTransition", "ddpm", "ddpm_transition", "exact_covariance", "exact_covariance_transition",
    "hessian_free", "li_icml2024", "li_icml2024_transitions", "one_score_reuse", "run_chain",
    "heroism", "li_icml2024_ode", "on_vp_chain", "SAMPLERS", "SamplerSpec", "sampler_names", "cache_block_rows",
]
