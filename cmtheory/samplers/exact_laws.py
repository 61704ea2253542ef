r"""Exact laws of sampler outputs, without Monte Carlo.

1-D (and, coordinate by coordinate, product) targets: a Markov sampler with Gaussian
transitions :math:`Y' \sim N(m(Y), s(Y)^2)` moves a law held as cell masses on a uniform
grid. One step, with the density taken uniform within each cell:

1. push each cell :math:`[e_i, e_{i+1}]` through the monotone mean map to
   :math:`[m(e_i), m(e_{i+1})]` (the exact change of variables of a piecewise-linear map);
2. add the state-dependent part of the noise, :math:`N(0, s(c_i)^2 - s_0^2)` with
   :math:`s_0 = \min_i s(c_i)`, exactly for a uniform source cell: the mass it sends to
   cell j is :math:`F(e_{j+1}) - F(e_j)`, :math:`F(x) = [\Psi(x - a) - \Psi(x - b)]/(b-a)`,
   :math:`\Psi(t) = u\,G(t/u)`, :math:`G(x) = x\Phi(x) + \varphi(x)` (banded: only cells
   within 8u are touched);
3. convolve with the constant part :math:`N(0, s_0^2)` by FFT, with the exact
   cell-to-cell kernel :math:`K_k = \tfrac{s_0}{h}[G(\tfrac{(k+1)h}{s_0}) - 2G(\tfrac{kh}{s_0}) + G(\tfrac{(k-1)h}{s_0})]`.

Errors are :math:`O(h^2)`; :func:`richardson_law` computes the law on N and 2N cells and
extrapolates the cell masses, :math:`(4 p_{2N} - p_N)/3` (fine masses summed in pairs), which
removes the :math:`h^2` term and reports the accuracy it measured.
Mass pushed off the grid is counted in ``lost``, never dropped silently.

Gaussian targets: every Gaussian-transition sampler is affine with constant noise, so
the output law is Gaussian, propagated exactly by :func:`gaussian_law`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import scipy.interpolate
import scipy.signal
import scipy.special
import torch

from cmtheory._checks import check_noise_levels, check_positive_int
from cmtheory.processes import DiscreteVP
from cmtheory.samplers.ode import ddim_step
from cmtheory.samplers.registry import SAMPLERS
from cmtheory.samplers.stochastic import GaussianTransition, ddpm_transition, exact_covariance_transition, li_icml2024_transitions
from cmtheory.targets import GaussianMixture

__all__ = [
    "GridLaw",
    "uniform_grid",
    "gmm_1d_cdf",
    "gmm_1d_law",
    "normal_law",
    "propagate",
    "markov_law_1d",
    "ddpm_law_1d",
    "exact_covariance_law_1d",
    "ddim_law_1d",
    "gaussian_law",
    "pushforward_law",
    "sampler_law_1d",
    "EXACT_LAW_SAMPLERS",
    "richardson_law",
]

Transition = Callable[[torch.Tensor], GaussianTransition]
GAUSSIAN_STEP_SAMPLERS = ("ddpm", "exact_covariance", "li_icml2024")
#: registry names with an exact law: every deterministic sampler and the Gaussian-step ones
EXACT_LAW_SAMPLERS = tuple(n for n, spec in SAMPLERS.items() if spec.kind == "deterministic" or n in GAUSSIAN_STEP_SAMPLERS)


@dataclass(frozen=True)
class GridLaw:
    """A 1-D law as masses of the cells of a uniform grid.

    Attributes
    ----------
    edges : ndarray (N + 1,)
    masses : ndarray (N,)
    lost : float
        Mass that left the grid (an upper bound on the error it causes in TV).
    grid_error : float or None
        For a Richardson-extrapolated law: the TV between the extrapolated law and the
        fine-grid law, an estimate of the fine law's grid error (the extrapolated law's own
        error is of higher order); None where not measured.
    """

    edges: np.ndarray
    masses: np.ndarray
    lost: float = 0.0
    grid_error: float | None = None

    @property
    def h(self) -> float:
        return float(self.edges[1] - self.edges[0])

    @property
    def centers(self) -> np.ndarray:
        return 0.5 * (self.edges[1:] + self.edges[:-1])

    @property
    def density(self) -> np.ndarray:
        return self.masses / self.h


def uniform_grid(lo: float, hi: float, N: int) -> np.ndarray:
    """Edges of N equal cells covering [lo, hi]."""
    check_positive_int(N, "N", 2)
    if not hi > lo:
        raise ValueError(f"need hi > lo, got [{lo}, {hi}]")
    return np.linspace(lo, hi, N + 1)


def _check_1d_mixture(target) -> None:
    if not isinstance(target, GaussianMixture) or target.d != 1:
        raise ValueError(f"target must be a 1-D GaussianMixture, got {type(target).__name__} with d={getattr(target, 'd', None)}")


def gmm_1d_cdf(target: GaussianMixture, alpha: float, sigma: float, x: np.ndarray) -> np.ndarray:
    r"""CDF of the 1-D mixture's noisy law :math:`\sum_k w_k N(\alpha\mu_k, \alpha^2 c_k + \sigma^2)` at ``x``."""
    _check_1d_mixture(target)
    w = target.weights.numpy()
    mu = target.means[:, 0].numpy()
    var = target._cov_matrices()[:, 0, 0].numpy()
    sd = np.sqrt(alpha**2 * var + sigma**2)
    return (w * scipy.special.ndtr((np.asarray(x)[..., None] - alpha * mu) / sd)).sum(-1)


def _law_from_cdf(edges: np.ndarray, cdf: np.ndarray, grid_error: float | None = None) -> GridLaw:
    return GridLaw(edges, np.diff(cdf), lost=float(cdf[0] + 1 - cdf[-1]), grid_error=grid_error)


def gmm_1d_law(target: GaussianMixture, alpha: float, sigma: float, edges: np.ndarray) -> GridLaw:
    r"""Exact cell masses of the 1-D mixture's noisy law :math:`\sum_k w_k N(\alpha\mu_k, \alpha^2 c_k + \sigma^2)`."""
    return _law_from_cdf(edges, gmm_1d_cdf(target, alpha, sigma, edges))


def normal_law(mean: float, std: float, edges: np.ndarray) -> GridLaw:
    """Exact cell masses of N(mean, std^2)."""
    return _law_from_cdf(edges, scipy.special.ndtr((edges - mean) / std))


def _G(x):
    r""":math:`G(x) = x\Phi(x) + \varphi(x)`, the second antiderivative of the normal density."""
    return x * scipy.special.ndtr(x) + np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _Psi(t, u):
    """u G(t / u), tending to max(t, 0) as u -> 0."""
    out = np.maximum(t, 0.0)
    pos = u > 0
    if np.any(pos):
        uu = np.broadcast_to(u, t.shape)
        out = np.where(pos, uu * _G(t / np.where(pos, uu, 1.0)), out)
    return out


def _push_with_extra_noise(law: GridLaw, m_edges: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, float]:
    """Steps 1-2: uniform source cells through the piecewise-linear map plus N(0, u_i^2)."""
    e, p, h, N = law.edges, law.masses, law.h, law.masses.size
    a, b = m_edges[:-1], m_edges[1:]
    w = b - a
    if np.any(w <= 0):
        raise ValueError("the sampler's mean map is not increasing on the grid (a step too large for this target); use more steps")
    band = int(math.ceil(8 * float(u.max()) / h)) + 1
    j0 = np.floor((a - e[0]) / h).astype(np.int64) - band
    width = int(np.max(np.floor((b - e[0]) / h).astype(np.int64) + band + 1 - j0)) + 1
    idx = j0[:, None] + np.arange(width)[None, :]
    lo_edge = e[0] + idx * h

    def F(x):
        return (_Psi(x - a[:, None], u[:, None]) - _Psi(x - b[:, None], u[:, None])) / w[:, None]

    frac = F(lo_edge + h) - F(lo_edge)
    inside = (idx >= 0) & (idx < N)
    out = np.bincount(idx[inside], weights=(p[:, None] * frac)[inside], minlength=N)
    return out, float(p.sum() - out.sum())


def _convolve_normal(masses: np.ndarray, s0: float, h: float) -> np.ndarray:
    """Step 3: FFT convolution with the exact cell-to-cell kernel of N(0, s0^2)."""
    if s0 <= 0:
        return masses
    L = min(int(math.ceil(10 * s0 / h)) + 1, masses.size)
    k = np.arange(-L, L + 1, dtype=np.float64)
    r = h / s0
    kernel = (s0 / h) * (_G((k + 1) * r) - 2 * _G(k * r) + _G((k - 1) * r))
    # FFT round-off leaves |values| ~ 1e-17 below zero where the mass is 0; masses are >= 0
    return np.clip(scipy.signal.fftconvolve(masses, kernel, mode="same"), 0.0, None)


def propagate(law: GridLaw, transition: Transition) -> GridLaw:
    """One Gaussian-transition step of a 1-D law (module docstring, steps 1-3).

    ``transition(y)`` maps points of shape (P, 1) to a GaussianTransition; its noise map is
    evaluated at z = 1 to read the noise standard deviation.
    """
    edges_t = torch.from_numpy(law.edges)[:, None]
    centers_t = torch.from_numpy(law.centers)[:, None]
    m_edges = transition(edges_t).mean[:, 0].numpy()
    tr_c = transition(centers_t)
    s = tr_c.noise(torch.ones_like(centers_t))[:, 0].abs().numpy()
    s0 = float(s.min())
    u = np.sqrt(np.maximum(s * s - s0 * s0, 0.0))
    pushed, lost_push = _push_with_extra_noise(law, m_edges, u)
    out = _convolve_normal(pushed, s0, law.h)
    lost_conv = float(pushed.sum() - out.sum())
    return GridLaw(law.edges, out, law.lost + max(lost_push, 0.0) + max(lost_conv, 0.0))


def markov_law_1d(init: GridLaw, transitions: Iterable[Transition]) -> GridLaw:
    """The law after a sequence of Gaussian-transition steps."""
    law = init
    for tr in transitions:
        law = propagate(law, tr)
    return law


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


def pushforward_law(transport: Callable[[np.ndarray], np.ndarray], start_cdf: Callable[[np.ndarray], np.ndarray], start_edges: np.ndarray, edges: np.ndarray, newton: int = 2) -> GridLaw:
    r"""Exact law of :math:`\Phi(X)` for an increasing map :math:`\Phi` (a deterministic sampler, run
    whole) and X with CDF ``start_cdf``: cell masses :math:`F(\Phi^{-1}(e_{j+1})) - F(\Phi^{-1}(e_j))`.

    :math:`\Phi` is run on ``start_edges``; its monotone cubic (PCHIP) inverse gives a first
    :math:`\Phi^{-1}(e_j)`, refined by ``newton`` Newton steps that run :math:`\Phi` itself, with the
    slope of the PCHIP interpolant of :math:`\Phi`. ``grid_error`` bounds the TV change one more
    Newton step would make, :math:`\sum_j |F(x_j + \delta_j) - F(x_j)|`. Preimages outside
    ``start_edges`` are clamped to it, so the start mass outside is counted in ``lost``.
    A map that is not increasing on ``start_edges`` is a ValueError.
    """
    s_edges = np.asarray(start_edges, dtype=np.float64)
    P = transport(s_edges)
    if not (np.all(np.isfinite(P)) and np.all(np.diff(P) > 0)):
        raise ValueError("the sampler's map is not increasing on start_edges (a step too large for this target, or a start grid beyond its range); use more steps or a narrower start grid")
    inverse = scipy.interpolate.PchipInterpolator(P, s_edges)
    slope = scipy.interpolate.PchipInterpolator(s_edges, P).derivative()
    inside = (edges > P[0]) & (edges < P[-1])
    e = edges[inside]
    x = inverse(e)
    for _ in range(newton):
        x = np.clip(x - (transport(x) - e) / slope(x), s_edges[0], s_edges[-1])
    delta = (transport(x) - e) / slope(x)
    pre = np.where(edges <= P[0], s_edges[0], s_edges[-1])
    pre[inside] = x
    cdf = start_cdf(pre)
    err = float(np.abs(start_cdf(np.clip(x - delta, s_edges[0], s_edges[-1])) - cdf[inside]).sum())
    return _law_from_cdf(edges, cdf, err)


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
    _check_1d_mixture(target)
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


def gaussian_law(mean: torch.Tensor, cov: torch.Tensor, transitions: Iterable[Transition]) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Exact output law of a Gaussian-transition sampler on a Gaussian target.

    Each transition is affine, :math:`Y' = A Y + b + M Z`, with M independent of Y; A and M
    are read off by applying the transition to the basis vectors, then
    :math:`m' = A m + b`, :math:`P' = A P A^T + M M^T`.
    """
    d = mean.numel()
    eye = torch.eye(d, dtype=torch.float64)
    m, P = mean.double().reshape(1, d), cov.double()
    for tr in transitions:
        base = tr(m)
        A_T = tr(m + eye).mean - base.mean  # rows: A e_i
        M_T = tr(m.expand(d, d)).noise(eye)  # rows: M e_i
        m = base.mean
        P = A_T.T @ P @ A_T + M_T.T @ M_T
        P = 0.5 * (P + P.T)
    return m[0], P


def richardson_law(law_fn: Callable[[np.ndarray], GridLaw], lo: float, hi: float, N: int) -> GridLaw:
    r"""Richardson extrapolation in the cell width: ``law_fn(edges)`` on N and 2N cells,
    masses :math:`(4 p_{2N} - p_N)/3` on the N-cell grid, with ``grid_error`` =
    TV(extrapolated, fine). Extrapolated masses may be slightly negative (order of the error)."""
    coarse = law_fn(uniform_grid(lo, hi, N))
    fine = law_fn(uniform_grid(lo, hi, 2 * N))
    fine_masses = fine.masses[0::2] + fine.masses[1::2]
    ext = (4 * fine_masses - coarse.masses) / 3
    return GridLaw(coarse.edges, ext, max(coarse.lost, fine.lost), 0.5 * float(np.abs(ext - fine_masses).sum()))
