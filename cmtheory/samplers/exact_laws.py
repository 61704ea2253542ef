r"""Exact laws of the registered samplers' outputs, without Monte Carlo, on the grid engine of
:mod:`cmtheory.laws.grid` (1-D and, coordinate by coordinate, product targets).

Stochastic Gaussian-transition samplers propagate their law step by step
(:func:`cmtheory.laws.markov_law_1d`, O(h^2), extrapolated by :func:`cmtheory.laws.richardson_law`);
deterministic samplers push the start law through their whole map
(:func:`cmtheory.laws.pushforward_law`).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.special
import torch

from cmtheory._checks import check_noise_levels
from cmtheory.laws import GaussianTransition, GridLaw, Transition, gmm_1d_cdf, gmm_1d_law, markov_law_1d, normal_law, pushforward_law, uniform_grid
from cmtheory.laws.reference import check_1d_mixture
from cmtheory.laws.transitions import ddpm_transition, exact_covariance_transition, li_icml2024_transitions
from cmtheory.processes import DiscreteVP
from cmtheory.samplers.ode import ddim_step
from cmtheory.samplers.registry import SAMPLERS
from cmtheory.targets import GaussianMixture

__all__ = [
    "ddpm_law_1d",
    "exact_covariance_law_1d",
    "ddim_law_1d",
    "sampler_law_1d",
    "EXACT_LAW_SAMPLERS",
    "GAUSSIAN_STEP_SAMPLERS",
]

GAUSSIAN_STEP_SAMPLERS = ("ddpm", "exact_covariance", "li_icml2024")
#: registry names with an exact law: every deterministic sampler and the Gaussian-step ones
EXACT_LAW_SAMPLERS = tuple(n for n, spec in SAMPLERS.items() if spec.kind == "deterministic" or n in GAUSSIAN_STEP_SAMPLERS)


def _chain_steps(schedule: DiscreteVP, t_stop: int):
    if not 0 <= t_stop < schedule.T:
        raise ValueError(f"t_stop must be in 0..{schedule.T - 1}, got {t_stop}")
    return range(schedule.T, t_stop, -1)


def ddpm_law_1d(score, schedule: DiscreteVP, edges: np.ndarray, *, variance="beta", t_stop=0, init: GridLaw | None = None) -> GridLaw:
    """Exact law of DDPM's output (1-D score), started from N(0, 1) unless ``init`` is given."""
    init = normal_law(0.0, 1.0, edges) if init is None else init
    return markov_law_1d(init, (lambda y, t=t: ddpm_transition(score, schedule, t, y, variance) for t in _chain_steps(schedule, t_stop)))


def exact_covariance_law_1d(score, hvp, schedule: DiscreteVP, edges: np.ndarray, *, t_stop=0, init: GridLaw | None = None) -> GridLaw:
    """Exact law of the exact-covariance sampler's output (1-D), started from N(0, 1) unless ``init``."""
    init = normal_law(0.0, 1.0, edges) if init is None else init
    return markov_law_1d(init, (lambda y, t=t: exact_covariance_transition(score, hvp, schedule, t, y) for t in _chain_steps(schedule, t_stop)))


def _ddim_transition(denoiser, lam, lam_next):
    def transition(y):
        return GaussianTransition(ddim_step(denoiser, y, lam, lam_next), lambda z: 0 * z)

    return transition


def ddim_law_1d(denoiser, lambdas, init: GridLaw) -> GridLaw:
    """Exact law of DDIM's output in EDM variables (a deterministic monotone map per step)."""
    lam = check_noise_levels(lambdas)
    return markov_law_1d(init, (_ddim_transition(denoiser, lam[i], lam[i + 1]) for i in range(len(lam) - 1)))


def _gaussian_transitions(name: str, score, hvp, schedule: DiscreteVP, t: int) -> list[Transition]:
    """The Gaussian transitions of step t of a registered stochastic sampler."""
    if name == "ddpm":
        return [lambda y: ddpm_transition(score, schedule, t, y)]
    if name == "exact_covariance":
        return [lambda y: exact_covariance_transition(score, hvp, schedule, t, y)]
    if name == "li_icml2024":
        return list(li_icml2024_transitions(score, schedule, t))
    raise ValueError(f"sampler {name!r} has no exact law: its steps are not Gaussian given the state (use Monte Carlo); exact laws exist for {sorted(EXACT_LAW_SAMPLERS)}")


def sampler_law_1d(name: str, target: GaussianMixture, schedule: DiscreteVP, edges: np.ndarray, *, start: str = "q_T", score=None, hvp=None, start_edges: np.ndarray | None = None, t_stop: int = 0) -> GridLaw:
    r"""Exact output law of the registered sampler ``name`` (:data:`cmtheory.samplers.SAMPLERS`) on a
    1-D Gaussian mixture, on the grid ``edges``.

    Parameters
    ----------
    name : str
        A registry name; every deterministic sampler, and the Gaussian-transition stochastic
        ones (``ddpm``, ``exact_covariance``, ``li_icml2024``, whose half-steps are Gaussian).
    target : GaussianMixture
        1-D; gives the score (unless ``score`` is given), the HVP and the exact :math:`q_T`.
    start : {"q_T", "normal"}
        :math:`Y_T \sim q_T`, the chain's exact law at step T (isolates the discretisation
        error), or N(0, 1) (what a user runs; a deterministic sampler then carries
        TV(N(0, 1), q_T) unchanged).
    score, hvp : callable, optional
        A score and its Hessian-vector product to use in place of ``target.score`` and
        ``target.hvp`` (e.g. :func:`~cmtheory.samplers.scores.controlled_perturbation`'s).
    start_edges : ndarray, optional
        Deterministic samplers: where the map is run first (default: 4096 cells on +-12 start
        standard deviations).
    t_stop : int
        The law of :math:`Y_{t_{stop}}` (compare with the channel of step ``t_stop``); 0 by default.

    Deterministic samplers use :func:`pushforward_law` (exact up to the Newton residual it
    reports); stochastic ones :func:`markov_law_1d` (O(h^2), use :func:`richardson_law`).
    """
    if name not in SAMPLERS:
        raise ValueError(f"name must be a registered sampler, one of {sorted(SAMPLERS)}; got {name!r}")
    if start not in ("q_T", "normal"):
        raise ValueError(f"start must be 'q_T' or 'normal', got {start!r}")
    check_1d_mixture(target)
    score = target.score if score is None else score
    hvp = target.hvp if hvp is None else hvp
    a_T, s_T = schedule.channel(schedule.T)
    spec = SAMPLERS[name]
    if spec.kind == "deterministic":
        if start == "q_T":
            def start_cdf(x):
                return gmm_1d_cdf(target, a_T, s_T, x)
            spread = math.sqrt(a_T**2 * float(target.covariance()[0, 0] + target.means[:, 0].abs().max() ** 2) + s_T**2)
        else:
            start_cdf, spread = scipy.special.ndtr, 1.0
        s_edges = uniform_grid(-12 * spread, 12 * spread, 4096) if start_edges is None else np.asarray(start_edges, dtype=np.float64)

        def transport(x):
            y = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))[:, None]
            return spec.run(score, schedule, y, t_stop=t_stop)[:, 0].numpy()

        return pushforward_law(transport, start_cdf, s_edges, edges)
    init = gmm_1d_law(target, a_T, s_T, edges) if start == "q_T" else normal_law(0.0, 1.0, edges)
    return markov_law_1d(init, (tr for t in _chain_steps(schedule, t_stop) for tr in _gaussian_transitions(name, score, hvp, schedule, t)))
