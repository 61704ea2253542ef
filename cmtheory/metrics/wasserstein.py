r"""Wasserstein distances: from samples (POT's exact OT, GeomLoss's Sinkhorn divergence, a
torch sliced W), exact in 1-D and between Gaussians, exact for product laws, and the coupling
upper bound.

Sample-based estimators split the n samples into B disjoint batches of m = n // B and
report the mean over batches with its standard error; the noise floor is the same
estimator between two independent reference samples of the same batch size, so
``value`` and ``floor`` are comparable (both are the expected empirical distance at m).
The empirical W between two m-samples of one law decays like :math:`m^{-1/d}` (d >= 3).
"""

from __future__ import annotations

import math

import numpy as np
import ot
import torch

from cmtheory._checks import check_gaussians, check_positive, check_positive_int, real_array
from cmtheory.metrics.result import Estimate, replicate_estimate
from cmtheory.laws import GridLaw

__all__ = ["wasserstein", "sliced_wasserstein", "sinkhorn_divergence", "w_grid", "w2_gaussians", "w2_product", "coupling_distance"]

_METHODS = ("emd", "sinkhorn", "sliced")
_SOFTMIN_ROWS = 32  # cost-matrix rows formed at a time by the soft-C-transform (a 32 x m block stays in cache)
_SLICE_BYTES = 2**26  # projected values held per chunk of projections (64 MiB of float64)


def _as_array(x, name: str) -> np.ndarray:
    a = real_array(x, name)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"{name} must have shape (n, d), got {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf")
    return a


def _check_scaling(scaling) -> None:
    if isinstance(scaling, bool) or not isinstance(scaling, (int, float)) or not 0 < scaling < 1:
        raise ValueError(f"scaling must be a number in (0, 1), got {scaling!r}")


def _softmin_blocks(eps: float, xy: tuple, h: torch.Tensor) -> torch.Tensor:
    r"""GeomLoss's soft-C-transform for its p = 2 cost :math:`C(x, y) = |x - y|^2/2`,

    .. math:: f_i = -\epsilon \log \sum_j \exp\big(h_j - C(x_i, y_j)/\epsilon\big)
              = \frac{|x_i|^2}{2} - \epsilon \log \sum_j \exp\Big(h_j - \frac{|y_j|^2}{2\epsilon} + \frac{x_i \cdot y_j}{\epsilon}\Big),

    formed ``_SOFTMIN_ROWS`` rows of the cost at a time from the points ``xy = (x, y)`` (shapes
    (1, N, D) and (1, M, D); ``h`` of shape (1, M)): no N x M matrix is held, and each block
    stays in cache through its matmul and log-sum-exp. GeomLoss's dense backend forms the
    same expansion of :math:`|x - y|^2` over the whole matrix (its ``squared_distances``).
    """
    x, y = xy[0][0], xy[1][0]
    hy = h[0] - y.square().sum(1).div_(2 * eps)
    f = torch.empty(x.shape[0], dtype=x.dtype)
    block = torch.empty(min(_SOFTMIN_ROWS, x.shape[0]), y.shape[0], dtype=x.dtype)
    for i in range(0, x.shape[0], _SOFTMIN_ROWS):
        rows = slice(i, i + _SOFTMIN_ROWS)
        b = block[: x[rows].shape[0]]
        torch.logsumexp(torch.addmm(hy, x[rows], y.T, alpha=1 / eps, out=b), 1, out=f[rows])
    return f.sub_(x.square().sum(1).div_(2 * eps)).mul_(-eps)[None]


def sinkhorn_divergence(x, y, reg: float = 0.1, scaling: float = 0.8) -> float:
    r"""Debiased Sinkhorn divergence with squared Euclidean cost, in the units of :math:`W_2^2`:

    .. math::
        S_\epsilon(\mu, \nu) = OT_\epsilon(\mu, \nu) - \tfrac12 OT_\epsilon(\mu, \mu)
        - \tfrac12 OT_\epsilon(\nu, \nu), \quad
        OT_\epsilon = \min_\pi \int |x - y|^2 d\pi + \epsilon\, KL(\pi \,|\, \mu \otimes \nu),

    with :math:`\epsilon` = ``reg`` (Gibbs kernel :math:`e^{-|x-y|^2/\epsilon}`, POT's
    convention). Computed by GeomLoss's symmetric Sinkhorn loop with epsilon-scaling (its
    ``sinkhorn_loop``, ``scaling_parameters`` and ``sinkhorn_cost``, what
    ``SamplesLoss("sinkhorn", p=2, blur, scaling)`` runs), in float32, with the
    soft-C-transform done in row blocks (:func:`_softmin_blocks`) instead of GeomLoss's dense
    m x m matrices: 7x faster at m = 1e4 on 2 cores (BENCHMARKS.md) and O(m) memory, so any
    batch size runs without KeOps. GeomLoss's p = 2 cost is :math:`|x-y|^2/2` with temperature
    blur^2, so blur = sqrt(reg / 2) and :math:`S_\epsilon` = 2 x GeomLoss's value.
    :math:`S_\epsilon \to W_2^2` as :math:`\epsilon \to 0`, with a bias :math:`O(\epsilon^2)`
    for smooth densities (Chizat et al., 2020).

    Parameters
    ----------
    x, y : array or tensor of shape (m, d)
        Samples with uniform weights (sizes may differ).
    reg : float
        :math:`\epsilon > 0`, in the units of :math:`|x - y|^2`.
    scaling : float in (0, 1)
        Ratio of successive blurs in the annealing. GeomLoss stops after the schedule instead
        of at a tolerance; against a fully converged log-domain solution (POT) the relative
        error measured at reg = 1, m = 400 was 3e-2 (0.5), 3e-3 (0.7), 8e-4 (0.8), 4e-4 (0.9).
    """
    from geomloss._legacy.sinkhorn_divergence import log_weights, scaling_parameters, sinkhorn_cost, sinkhorn_loop

    check_positive(reg, "reg")
    _check_scaling(scaling)
    X = torch.from_numpy(_as_array(x, "x")).float()
    Y = torch.from_numpy(_as_array(y, "y")).float()
    if not (torch.isfinite(X).all() and torch.isfinite(Y).all()):
        raise ValueError("x or y exceeds the float32 range (|value| > 3.4e38) that the Sinkhorn solver runs in: rescale the samples")
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"x and y must have the same dimension d, got {X.shape[1]} and {Y.shape[1]}")
    X, Y = X[None], Y[None]
    a, b = torch.full((1, X.shape[1]), 1 / X.shape[1]), torch.full((1, Y.shape[1]), 1 / Y.shape[1])
    _, eps, eps_list, rho = scaling_parameters(X, Y, 2, math.sqrt(reg / 2), None, None, scaling)
    with torch.no_grad():
        f_aa, g_bb, g_ab, f_ba = sinkhorn_loop(_softmin_blocks, log_weights(a), log_weights(b), (X, X), (Y, Y), (X, Y), (Y, X), eps_list, rho, debias=True)
        return 2.0 * float(sinkhorn_cost(eps, rho, a, b, f_aa, g_bb, g_ab, f_ba, batch=True, debias=True))


def _projections(d: int, n_projections: int, seed: int) -> torch.Tensor:
    """n_projections directions uniform on the sphere S^(d-1), as the columns of a (d, L) matrix."""
    theta = torch.randn(d, n_projections, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return theta / torch.linalg.vector_norm(theta, dim=0, keepdim=True)


def _projected_wpp(X: torch.Tensor, Y: torch.Tensor, theta: torch.Tensor, p: float) -> torch.Tensor:
    r""":math:`W_p^p(\theta_l \# \hat\mu, \theta_l \# \hat\nu) = \frac1n \sum_i |x_{(i)} - y_{(i)}|^p`
    for each column :math:`\theta_l` (sorted projections of equal-size samples), shape (L,).
    Projections are taken a chunk at a time so that memory stays O(n x chunk)."""
    n, L = X.shape[0], theta.shape[1]
    chunk = max(1, _SLICE_BYTES // (8 * n))
    out = torch.empty(L, dtype=torch.float64)
    for j in range(0, L, chunk):
        th = theta[:, j : j + chunk].T  # (c, d): rows are directions, so each sort runs along a contiguous row
        xs = torch.sort(th @ X.T, dim=1).values
        ys = torch.sort(th @ Y.T, dim=1).values
        out[j : j + th.shape[0]] = xs.sub_(ys).abs_().pow_(p).mean(1)
    return out


def sliced_wasserstein(x, y, p: float = 2, n_projections: int = 128, projections=None, seed: int = 0) -> Estimate:
    r"""Sliced Wasserstein distance between two equal-size samples, with its standard error over
    projections:

    .. math:: SW_p(\mu, \nu) = \Big(\int_{S^{d-1}} W_p^p(\theta\#\mu, \theta\#\nu)\, d\theta\Big)^{1/p},

    estimated by the mean of :math:`W_p^p` over L random directions, each exact in 1-D from the
    sorted projections (as ``ot.sliced_wasserstein_distance``, which it equals given the same
    directions). The standard error is that of the mean over directions, carried through
    :math:`(\cdot)^{1/p}` by the delta method; it is the projection (Monte Carlo) error only,
    not the sampling error of x and y (``wasserstein(method="sliced")`` adds batches for that).
    A lower bound on :math:`W_p`. Torch, float64, projections a chunk at a time: O(n) memory.

    Parameters
    ----------
    x, y : array or tensor of shape (n, d)
        Samples with uniform weights, equal n.
    p : float
        Order, finite and >= 1.
    n_projections : int
        L >= 2 directions drawn uniformly on the sphere from ``seed`` (ignored with ``projections``).
    projections : array of shape (d, L), optional
        Directions as columns (e.g. ``ot.sliced.get_random_projections(d, L, seed)``); they are
        used as given, not normalised.
    seed : int
        Seed of the torch generator that draws the directions.
    """
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p) or p < 1:
        raise ValueError(f"p must be a finite number >= 1, got {p!r}")
    X, Y = (torch.from_numpy(_as_array(v, name)) for v, name in ((x, "x"), (y, "y")))
    if X.shape != Y.shape:
        raise ValueError(f"x and y must have the same shape (n, d), got {tuple(X.shape)} and {tuple(Y.shape)}")
    d = X.shape[1]
    if projections is None:
        check_positive_int(n_projections, "n_projections")
        theta = _projections(d, n_projections, seed)
    else:
        theta = torch.from_numpy(real_array(projections, "projections"))
        if theta.ndim != 2 or theta.shape[0] != d:
            raise ValueError(f"projections must have shape (d, L) with d = {d}, got {tuple(theta.shape)}")
    if theta.shape[1] < 2:
        raise ValueError(f"need at least 2 projections for a standard error, got {theta.shape[1]}")
    wpp = _projected_wpp(X, Y, theta, p)
    mean = float(wpp.mean())
    se_mean = float(wpp.std() / math.sqrt(wpp.numel()))
    if not math.isfinite(mean):
        raise ValueError(f"p={p!r} overflows |x - y|^p for these samples: use a smaller p or rescale the samples")
    value = mean ** (1 / p)
    se = se_mean / p * mean ** (1 / p - 1) if mean > 0 else 0.0
    return Estimate(value, se, X.shape[0], "sliced", extra={"p": p, "n_projections": theta.shape[1], "mean_wpp": mean})


def _distance(x: np.ndarray, y: np.ndarray, p: int, method: str, reg: float, scaling: float, n_projections: int, seed: int) -> float:
    """One W_p between two equal-size samples."""
    if method == "emd":
        if x.shape[1] == 1:
            return float(ot.wasserstein_1d(x[:, 0], y[:, 0], p=p)) ** (1 / p)
        M = ot.dist(x, y, metric="sqeuclidean") if p == 2 else ot.dist(x, y, metric="euclidean") ** p
        w = np.full(x.shape[0], 1 / x.shape[0])
        return float(ot.emd2(w, w, M, numItermax=10_000_000)) ** (1 / p)
    if method == "sinkhorn":
        if p != 2:
            raise ValueError("method='sinkhorn' estimates W2 only (p=2)")
        return math.sqrt(max(sinkhorn_divergence(x, y, reg, scaling), 0.0))
    return sliced_wasserstein(x, y, p, n_projections, seed=seed).value


def wasserstein(
    x,
    y,
    p: int = 2,
    method: str = "emd",
    batches: int = 5,
    reference=None,
    reg: float = 0.1,
    scaling: float = 0.8,
    n_projections: int = 200,
    seed: int = 0,
) -> Estimate:
    r"""Sample-based :math:`W_p` between the laws of ``x`` and ``y``, with standard error and floor.

    Parameters
    ----------
    x, y : array or tensor of shape (n, d)
        Samples of the two laws (e.g. sampler output and target); equal n.
    p : float
        Order, finite and >= 1 (sinkhorn: 2 only).
    method : {"emd", "sinkhorn", "sliced"}
        ``"emd"``: exact OT (``ot.emd2``; ``ot.wasserstein_1d`` when d = 1).
        ``"sinkhorn"``: debiased Sinkhorn divergence :math:`S_\epsilon` with squared
        Euclidean cost (:func:`sinkhorn_divergence`, GeomLoss), reported as
        :math:`\sqrt{S_\epsilon}`; regularisation ``reg`` in cost units, annealing ratio ``scaling``.
        ``"sliced"``: sliced :math:`SW_p` (:func:`sliced_wasserstein`, torch, ``n_projections``
        directions from seed + batch), a lower bound on :math:`W_p`.
    batches : int
        B >= 2 disjoint batches; the value is the mean over batches of the distance between
        m = n // B samples, with its standard error.
    reference : array of shape (n, d), optional
        A second independent sample of ``y``'s law: the floor is the same estimator
        between ``y`` and ``reference``.
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p) or p < 1:
        raise ValueError(f"p must be a finite number >= 1, got {p!r}")
    if method == "sinkhorn":
        check_positive(reg, "reg")
        _check_scaling(scaling)
    if method == "sliced":
        check_positive_int(n_projections, "n_projections")
    X, Y = _as_array(x, "x"), _as_array(y, "y")
    if X.shape != Y.shape:
        raise ValueError(f"x and y must have the same shape (n, d), got {X.shape} and {Y.shape}")
    if not isinstance(batches, int) or batches < 2:
        raise ValueError(f"batches must be an int >= 2, got {batches!r}")
    m = X.shape[0] // batches
    if m < 2:
        raise ValueError(f"too few samples: n = {X.shape[0]} gives batches of {m} < 2 (need n >= {2 * batches})")
    R = None
    if reference is not None:
        R = _as_array(reference, "reference")
        if R.shape != Y.shape:
            raise ValueError(f"reference must have the shape of y {Y.shape}, got {R.shape}")
    args = (p, method, reg, scaling, n_projections)
    vals = [_distance(X[i * m : (i + 1) * m], Y[i * m : (i + 1) * m], *args, seed + i) for i in range(batches)]
    floor = None
    if R is not None:
        floor = [_distance(R[i * m : (i + 1) * m], Y[i * m : (i + 1) * m], *args, seed + i) for i in range(batches)]
    if not np.isfinite(vals + (floor or [])).all():
        raise ValueError(f"p={p!r} overflows |x - y|^p for these samples (the distance came out {vals[0]!r}): use a smaller p or rescale the samples")
    extra = {"p": p, "batch_size": m, "dim": X.shape[1]}
    if method == "sinkhorn":
        extra.update(reg=reg, scaling=scaling)
    if method == "sliced":
        extra["n_projections"] = n_projections
    return replicate_estimate(vals, method, X.shape[0], floor, **extra)


def _quantile(law: GridLaw, u: np.ndarray, side: str) -> np.ndarray:
    """Quantile function of the piecewise-uniform density; side='right' gives right limits
    (for the start of a u-interval), 'left' left limits (its end)."""
    cdf = np.concatenate([[0.0], np.cumsum(law.masses)])
    k = np.clip(np.searchsorted(cdf, u, side=side) - 1, 0, law.masses.size - 1)
    mass = law.masses[k]
    frac = np.where(mass > 0, (u - cdf[k]) / np.where(mass > 0, mass, 1.0), 0.0)
    return law.edges[k] + np.clip(frac, 0.0, 1.0) * (law.edges[k + 1] - law.edges[k])


def _normalised(law: GridLaw, name: str) -> GridLaw:
    if (law.masses < -1e-12).any():
        raise ValueError(f"{name} has negative masses (below -1e-12); W needs a law")
    m = np.clip(law.masses, 0.0, None)  # round-off only, checked above
    return GridLaw(law.edges, m / m.sum(), law.lost)


def w_grid(p_law: GridLaw, q_law: GridLaw, order: int = 2) -> Estimate:
    r"""Exact :math:`W_1` or :math:`W_2` between two piecewise-uniform 1-D densities on grids,
    :math:`W_p^p = \int_0^1 |Q_p(u) - Q_q(u)|^p du`: both quantile functions are linear between
    the merged CDF breakpoints, so the integral is exact on each piece. Masses are normalised
    to 1; the mass each law lost off its grid is reported in ``extra``."""
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order}")
    P, Q = _normalised(p_law, "p_law"), _normalised(q_law, "q_law")
    u = np.unique(np.concatenate([np.cumsum(P.masses), np.cumsum(Q.masses), [0.0, 1.0]]).clip(0, 1))
    a = _quantile(P, u[:-1], "right") - _quantile(Q, u[:-1], "right")
    b = _quantile(P, u[1:], "left") - _quantile(Q, u[1:], "left")
    du = np.diff(u)
    if order == 2:
        val = math.sqrt(max(float((du * (a * a + a * b + b * b) / 3).sum()), 0.0))
    else:
        same = a * b >= 0
        absum = np.abs(a) + np.abs(b)
        piece = np.where(same, 0.5 * absum, (a * a + b * b) / (2 * np.where(absum > 0, absum, 1.0)))
        val = float((du * piece).sum())
    return Estimate(val, 0.0, p_law.masses.size, f"grid quantile W{order}", extra={"lost": p_law.lost + q_law.lost})


def _psd_sqrt(C: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix; eigenvalues that round-off
    left below 0 (the caller checked they are within tolerance) count as 0."""
    lam, V = np.linalg.eigh(0.5 * (C + C.T))
    return (V * np.sqrt(np.clip(lam, 0.0, None))) @ V.T


def w2_gaussians(m1, C1, m2, C2) -> Estimate:
    r"""Closed-form :math:`W_2` between Gaussians (the Bures-Wasserstein distance, as
    ``ot.gaussian.bures_wasserstein_distance``):
    :math:`W_2^2 = |m_1 - m_2|^2 + \operatorname{tr}(C_1 + C_2 - 2(C_1^{1/2}C_2C_1^{1/2})^{1/2})`.
    Covariances may be singular (positive semi-definite); square roots by eigendecomposition,
    with round-off eigenvalues below 0 taken as 0 (POT's square root returns NaN there)."""
    m1, C1, m2, C2 = check_gaussians(m1, C1, m2, C2, definite=False)
    # W2 is 1-homogeneous: work at unit scale so that squares cannot overflow
    k = max(1.0, float(np.abs(np.concatenate([m1, m2])).max()), math.sqrt(float(max(np.abs(C1).max(), np.abs(C2).max()))))
    m1, m2, C1, C2 = m1 / k, m2 / k, C1 / k / k, C2 / k / k
    r1 = _psd_sqrt(C1)
    cross = np.linalg.eigvalsh(0.5 * ((r1 @ C2 @ r1) + (r1 @ C2 @ r1).T))
    w2sq = float(((m1 - m2) ** 2).sum() + np.trace(C1) + np.trace(C2) - 2 * np.sqrt(np.clip(cross, 0.0, None)).sum())
    return Estimate(k * math.sqrt(max(w2sq, 0.0)), 0.0, 0, "bures")


def w2_product(p_law: GridLaw, q_law: GridLaw, d: int) -> Estimate:
    r""":math:`W_2` between the d-fold products of two 1-D laws: :math:`\sqrt{d}\,W_2(p, q)`
    (the coordinate-wise coupling is optimal, W2^2 adds over independent coordinates)."""
    if not isinstance(d, int) or d < 1:
        raise ValueError(f"d must be an int >= 1, got {d!r}")
    w = w_grid(p_law, q_law, 2)
    return Estimate(math.sqrt(d) * w.value, math.sqrt(d) * w.se, w.n, "product grid W2", extra=dict(w.extra, d=d))


def coupling_distance(x, y, p: int = 2) -> Estimate:
    r"""Coupling upper bound :math:`W_p \le (E|X - Y|^p)^{1/p}` from paired samples (e.g. the
    same initial noise through a sampler and through the reference flow map). Standard error
    by the delta method on the mean of :math:`|X - Y|^p`."""
    X, Y = _as_array(x, "x"), _as_array(y, "y")
    if X.shape != Y.shape:
        raise ValueError(f"x and y must be paired samples of one shape, got {X.shape} and {Y.shape}")
    if X.shape[0] < 2:
        raise ValueError("too few samples: need n >= 2")
    dist_p = np.linalg.norm(X - Y, axis=1) ** p
    mean = float(dist_p.mean())
    se_mean = float(dist_p.std(ddof=1) / math.sqrt(dist_p.size))
    value = mean ** (1 / p)
    se = se_mean * (1 / p) * mean ** (1 / p - 1) if mean > 0 else se_mean ** (1 / p)
    return Estimate(value, se, X.shape[0], f"coupling W{p} upper bound", extra={"mean_dist_p": mean})
