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
from cmtheory.samplers.registry import (
    SAMPLERS, SamplerSpec, cache_block_rows, exact_law_samplers, load_sampler_plugins, register, sampler_names, sampler_spec, unregister,
)
from cmtheory.samplers.exact_laws import ddim_law_1d, sampler_law_1d, sampler_law_radial
from cmtheory.samplers.scores import CountingScore, denoiser_from_score, perturbed_score
from cmtheory.samplers.stochastic import (
    DrawAhead,
    GaussianTransition,
    ddpm,
    ddpm_transition,
    exact_covariance,
    exact_covariance_transition,
    gaussian_chain,
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
    "gaussian_chain", "hessian_free", "li_icml2024", "li_icml2024_transitions", "one_score_reuse", "run_chain",
    "heroism", "li_icml2024_ode", "on_vp_chain", "SAMPLERS", "SamplerSpec", "register", "unregister", "load_sampler_plugins", "sampler_spec",
    "sampler_names", "exact_law_samplers", "cache_block_rows", "ddim_law_1d", "sampler_law_1d", "sampler_law_radial",
]

load_sampler_plugins()  # installed packages' samplers (entry-point group cmtheory.samplers), in every process that imports the registry
