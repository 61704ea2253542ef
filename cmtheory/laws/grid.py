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

from cmtheory._checks import check_positive_int
from cmtheory.laws.transitions import GaussianTransition

__all__ = ["GridLaw", "Transition", "uniform_grid", "normal_law", "propagate", "markov_law_1d", "pushforward_law", "richardson_law"]

#: relative round-off of float64 maps: cells narrower than this (relative to x) are not divided
ROUND_OFF = 1e-13
#: a map whose image falls over start cells holding at most this mass in all (float64 noise of a map
#: steep beyond its resolution) still counts as increasing; that mass is added to ``grid_error``
#: (high_dim's quick profile, d = 4096: up to 280 such cells at x's resolution, 5e-12 in all)
FALL_MASS = 1e-9
#: ``transition(y) -> GaussianTransition`` for points y of shape (P, d)
Transition = Callable[[torch.Tensor], GaussianTransition]


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

    def cdf(self, x) -> np.ndarray:
        r"""CDF of the piecewise-uniform law (uniform within each cell) at the points ``x``.

        .. math:: F(x) = \sum_{j < i} p_j + p_i\,\frac{x - e_i}{h}, \qquad e_i \le x \le e_{i+1},

        linear between the edges: ``np.interp(x, edges, [0, cumsum(masses)])``. Below
        ``edges[0]`` it is 0 and above ``edges[-1]`` it is the total mass on the grid,
        ``masses.sum()``: the ``lost`` mass is not placed anywhere (where it went is unknown),
        so F tops out at about 1 - ``lost``. Masses are used as they are, not normalised
        (a Richardson-extrapolated law may have slightly negative masses, so F may decrease or
        exceed 1 by the order of ``grid_error``).

        Parameters
        ----------
        x : array_like
            Points, any shape.

        Returns
        -------
        ndarray
            F at ``x``, float64, of ``x``'s shape.
        """
        return np.interp(np.asarray(x, dtype=np.float64), self.edges, np.concatenate([[0.0], np.cumsum(self.masses)]))


def uniform_grid(lo: float, hi: float, N: int) -> np.ndarray:
    """Edges of N equal cells covering [lo, hi]."""
    check_positive_int(N, "N", 2)
    if not hi > lo:
        raise ValueError(f"need hi > lo, got [{lo}, {hi}]")
    return np.linspace(lo, hi, N + 1)


def _law_from_cdf(edges: np.ndarray, cdf: np.ndarray, grid_error: float | None = None) -> GridLaw:
    return GridLaw(edges, np.diff(cdf), lost=float(cdf[0] + 1 - cdf[-1]), grid_error=grid_error)


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


def _push_with_extra_noise(p: np.ndarray, m_edges: np.ndarray, u: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, float]:
    """Steps 1-2: cell masses ``p``, each uniform on its cell, through the piecewise-linear map with
    edge images ``m_edges``, plus N(0, u_i^2), onto the uniform grid with edges ``e``; returns the
    masses and the mass that left the grid."""
    h, N = float(e[1] - e[0]), e.size - 1
    a, b = m_edges[:-1], m_edges[1:]
    w = b - a
    if np.any(w <= 0):
        raise ValueError("the sampler's mean map is not increasing on the grid (a step too large for this target); use more steps")
    band = int(math.ceil(8 * float(u.max()) / h)) + 1
    j0 = np.floor((a - e[0]) / h).astype(np.int64) - band
    width = int(np.max(np.floor((b - e[0]) / h).astype(np.int64) + band + 1 - j0)) + 1
    idx = j0[:, None] + np.arange(width)[None, :]
    x = e[0] + (j0[:, None] + np.arange(width + 1)[None, :]) * h  # the cells' edges, each once
    F = (_Psi(x - a[:, None], u[:, None]) - _Psi(x - b[:, None], u[:, None])) / w[:, None]
    frac = F[:, 1:] - F[:, :-1]
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
    pushed, lost_push = _push_with_extra_noise(law.masses, m_edges, u, law.edges)
    out = _convolve_normal(pushed, s0, law.h)
    lost_conv = float(pushed.sum() - out.sum())
    return GridLaw(law.edges, out, law.lost + max(lost_push, 0.0) + max(lost_conv, 0.0))


def markov_law_1d(init: GridLaw, transitions: Iterable[Transition]) -> GridLaw:
    """The law after a sequence of Gaussian-transition steps."""
    law = init
    for tr in transitions:
        law = propagate(law, tr)
    return law


def pushforward_law(transport: Callable[[np.ndarray], np.ndarray], start_cdf: Callable[[np.ndarray], np.ndarray], start_edges: np.ndarray, edges: np.ndarray, newton: int = 2) -> GridLaw:
    r"""Exact law of :math:`\Phi(X)` for an increasing map :math:`\Phi` (a deterministic sampler, run
    whole) and X with CDF ``start_cdf``: cell masses :math:`F(\Phi^{-1}(e_{j+1})) - F(\Phi^{-1}(e_j))`.

    :math:`\Phi` is run on ``start_edges``; its monotone cubic (PCHIP) inverse gives a first
    :math:`\Phi^{-1}(e_j)`, refined by ``newton`` Newton steps that run :math:`\Phi` itself, with the
    slope of the PCHIP interpolant of :math:`\Phi`. ``grid_error`` bounds the TV change one more
    Newton step would make, :math:`\sum_j |F(x_j + \delta_j) - F(x_j)|`, plus the start mass of
    cells over which the image falls (at most :data:`FALL_MASS`, else a ValueError). Preimages outside
    ``start_edges`` are clamped to it, so the start mass outside is counted in ``lost``.
    A map that is not increasing on ``start_edges`` is a ValueError. Start cells whose image is
    wider than an output cell are subdivided until none is (:func:`_resolved_map`), so that a map
    that is steep somewhere (a flow between the modes of a mixture in high d) is resolved there.
    """
    s_edges, P = _resolved_map(transport, np.asarray(start_edges, dtype=np.float64), float(np.min(np.diff(edges))))
    falls = np.diff(P) <= 0
    held = np.diff(start_cdf(s_edges))[falls]
    if not np.all(np.isfinite(P)) or held.sum() > FALL_MASS:
        raise ValueError("the sampler's map is not increasing on start_edges where the start law has mass (a step too large for this target, "
                         "or a start grid beyond its range); use more steps or a narrower start grid")
    rising = np.concatenate([[True], P[1:] > np.maximum.accumulate(P)[:-1]])  # float64 noise where a steep map is resolved to round-off
    s_edges, P = s_edges[rising], P[rising]
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
    err = float(np.abs(start_cdf(np.clip(x - delta, s_edges[0], s_edges[-1])) - cdf[inside]).sum()) + float(held.sum())
    return _law_from_cdf(edges, cdf, err)


def _resolved_map(transport: Callable[[np.ndarray], np.ndarray], x: np.ndarray, h: float, rounds: int = 40, most: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Start points ``x`` and their images, with points added (at most ``most`` a cell a round,
    equispaced) in every cell whose image is wider than ``h`` and which float64 can still divide,
    until none is left or ``rounds`` rounds have run (a map with a jump, or nearly one, is then
    resolved to float64's resolution in x, where the start law's mass is below any grid error);
    a map that is not finite is returned as it is, for the caller to refuse."""
    P = transport(x)
    for _ in range(rounds):
        gaps = np.diff(P)
        if not np.all(np.isfinite(P)):
            break
        wide = np.flatnonzero((gaps > h) & (np.diff(x) > ROUND_OFF * np.abs(x[1:])))
        if wide.size == 0:
            break
        per = np.minimum(np.ceil(gaps[wide] / h).astype(np.int64), most)
        new = np.concatenate([np.linspace(x[i], x[i + 1], k + 1)[1:-1] for i, k in zip(wide, per)])
        new = new[(new > x[0]) & (new < x[-1])]
        if new.size == 0:  # cells at the resolution of float64
            break
        x = np.concatenate([x, new])
        P = np.concatenate([P, transport(new)])
        order = np.argsort(x, kind="stable")
        x, P = x[order], P[order]
    return x, P


def richardson_law(law_fn: Callable[[np.ndarray], GridLaw], lo: float, hi: float, N: int, *, with_fine: bool = False):
    r"""Richardson extrapolation in the cell width: ``law_fn(edges)`` on N and 2N cells,
    masses :math:`(4 p_{2N} - p_N)/3` on the N-cell grid, with ``grid_error`` =
    TV(extrapolated, fine). Extrapolated masses may be slightly negative (order of the error).

    Parameters
    ----------
    law_fn : callable
        ``edges -> GridLaw``.
    lo, hi : float
        The grid's range.
    N : int
        Cells of the coarse grid.
    with_fine : bool
        Also return the 2N-cell law (a functional's change between it and the extrapolated law
        estimates the functional's grid error, as ``grid_error`` does for TV).

    Returns
    -------
    GridLaw, or (GridLaw, GridLaw) with ``with_fine``
    """
    coarse = law_fn(uniform_grid(lo, hi, N))
    fine = law_fn(uniform_grid(lo, hi, 2 * N))
    fine_masses = fine.masses[0::2] + fine.masses[1::2]
    ext = (4 * fine_masses - coarse.masses) / 3
    law = GridLaw(coarse.edges, ext, max(coarse.lost, fine.lost), 0.5 * float(np.abs(ext - fine_masses).sum()))
    return (law, fine) if with_fine else law
