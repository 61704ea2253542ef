r"""Total variation :math:`TV(P, Q) = \sup_A |P(A) - Q(A)|`: exact where the laws are known,
bounded or estimated with uncertainty where they are not.

* :func:`tv_gaussians`: exact (1-D in closed form, equal covariances through the
  Mahalanobis distance, otherwise Gil-Pelaez inversion of the log-likelihood ratio's
  characteristic function, a generalised chi-square);
* :func:`tv_grid`: exact between laws on one grid;
* :func:`product_divergences`: d-fold products of 1-D grid laws: Monte Carlo TV over the
  log-likelihood ratio with a CI, exact Hellinger and KL, and the TV bounds they give;
* :func:`tv_histogram`: histogram estimate against a known density, d <= 2, with a
  bootstrap standard error and the floor;
* :func:`tv_classifier`: a held-out classifier's lower bound :math:`TV \ge 2\,acc - 1`.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import scipy.integrate
import scipy.special
import torch

from cmtheory._checks import check_gaussians
from cmtheory.metrics.result import Estimate
from cmtheory.laws import GridLaw

__all__ = ["tv_gaussians", "tv_grid", "product_divergences", "tv_histogram", "tv_classifier"]


def _prob_llr_positive(m, C, m1, C1, m2, C2) -> float:
    r""":math:`P_{X\sim N(m, C)}(\log N(X; m_1, C_1) - \log N(X; m_2, C_2) > 0)` by Gil-Pelaez:
    with X = m + Lz the log-ratio is :math:`z^TAz + b^Tz + c`; rotating to the eigenbasis of A
    gives :math:`\sum_j\lambda_j(w_j+\delta_j)^2 + sN(0,1) + c'`, and
    :math:`P(Q>0) = \tfrac12 + \tfrac1\pi\int_0^\infty \operatorname{Im}\varphi_Q(u)/u\,du`."""
    L = np.linalg.cholesky(C)
    P1, P2 = np.linalg.inv(C1), np.linalg.inv(C2)
    A = 0.5 * L.T @ (P2 - P1) @ L
    b = L.T @ (P2 @ (m - m2) - P1 @ (m - m1))
    c = -0.5 * (m - m1) @ P1 @ (m - m1) + 0.5 * (m - m2) @ P2 @ (m - m2)
    c += 0.5 * (np.linalg.slogdet(C2)[1] - np.linalg.slogdet(C1)[1])
    lam, V = np.linalg.eigh(0.5 * (A + A.T))
    bb = V.T @ b
    nz = np.abs(lam) > 1e-12 * max(1.0, np.abs(lam).max())
    lam_nz, b_nz = lam[nz], bb[nz]
    delta = b_nz / (2 * lam_nz)
    c_prime = c - float((b_nz**2 / (4 * lam_nz)).sum())
    s2 = float((bb[~nz] ** 2).sum())
    if not nz.any():  # Q is normal: N(c, s2)
        return float(scipy.special.ndtr(c / math.sqrt(s2))) if s2 > 0 else float(c > 0)

    def psi(u):
        """phi_Q(u) without its oscillating factor exp(i u c'); slowly varying for large u."""
        one = 1 - 2j * lam_nz * u
        return np.exp(-0.5 * s2 * u * u + (-0.5 * np.log(one) + 1j * lam_nz * delta**2 * u / one).sum())

    def integrand(u):
        if u == 0:
            return float(c_prime + (lam_nz * (1 + delta**2)).sum())  # E[Q], the limit of Im phi / u
        return float((np.exp(1j * u * c_prime) * psi(u)).imag / u)

    # head: plain adaptive quadrature; tail: Im[e^{iuc'} psi]/u = sin(c'u) Re psi/u + cos(c'u) Im psi/u,
    # Fourier integrals on [X, inf) by QUADPACK's QAWF (weight='sin'/'cos')
    X = 50 / np.abs(lam_nz).max()
    head = scipy.integrate.quad(integrand, 0, X, limit=2000, epsabs=1e-12, epsrel=1e-11)[0]
    if abs(c_prime) > 0:
        tail = scipy.integrate.quad(lambda u: psi(u).real / u, X, np.inf, weight="sin", wvar=abs(c_prime), limlst=200)[0] * np.sign(c_prime)
        tail += scipy.integrate.quad(lambda u: psi(u).imag / u, X, np.inf, weight="cos", wvar=abs(c_prime), limlst=200)[0]
    else:
        tail = scipy.integrate.quad(lambda u: psi(u).imag / u, X, np.inf, limit=2000, epsabs=1e-12)[0]
    return 0.5 + (head + tail) / math.pi


def _tv_normal_1d(m1, s1, m2, s2) -> float:
    """1-D: the densities cross at the roots of a quadratic; TV = sum over {p1 > p2} of P1 - P2."""
    if math.isclose(s1, s2, rel_tol=1e-14):
        return float(2 * scipy.special.ndtr(abs(m1 - m2) / (2 * s1)) - 1)
    # log p1 - log p2 = a x^2 + b x + c
    a = 0.5 / s2**2 - 0.5 / s1**2
    b = m1 / s1**2 - m2 / s2**2
    c = 0.5 * m2**2 / s2**2 - 0.5 * m1**2 / s1**2 + math.log(s2 / s1)
    # two distinct normal densities with different variances always cross twice (both
    # integrate to 1), so disc > 0; max() only guards round-off for near-identical laws
    disc = max(b * b - 4 * a * c, 0.0)
    F1 = lambda x: scipy.special.ndtr((x - m1) / s1)  # noqa: E731
    F2 = lambda x: scipy.special.ndtr((x - m2) / s2)  # noqa: E731
    r1, r2 = sorted(((-b - math.sqrt(disc)) / (2 * a), (-b + math.sqrt(disc)) / (2 * a)))
    inside = (F1(r2) - F1(r1)) - (F2(r2) - F2(r1))  # P1 - P2 on [r1, r2]
    return float(abs(inside))


def tv_gaussians(m1, C1, m2, C2) -> Estimate:
    r"""Exact :math:`TV(N(m_1, C_1), N(m_2, C_2))` (accurate to ~1e-8).

    Equal covariances: :math:`2\Phi(\delta/2) - 1`, :math:`\delta` the Mahalanobis distance.
    1-D: from the two crossing points. Otherwise
    :math:`TV = P_1(A) - P_2(A)`, :math:`A = \{\log p_1 > \log p_2\}`, each probability by
    Gil-Pelaez inversion (numerical quadrature), checked against the Hellinger bounds
    :math:`1 - BC \le TV \le \sqrt{1 - BC^2}`: where those bounds are within 1e-9 of each
    other, or the quadrature does not converge (extreme separations or scale ratios), the
    value is their midpoint with ``ci`` the bounds and ``se`` half their width, and the
    method says so."""
    m1, C1, m2, C2 = check_gaussians(m1, C1, m2, C2)
    if np.allclose(C1, C2, rtol=1e-14, atol=0):
        diff = m1 - m2
        delta = math.sqrt(max(float(diff @ np.linalg.solve(C1, diff)), 0.0))
        return Estimate(float(2 * scipy.special.ndtr(delta / 2) - 1), 0.0, 0, "gaussian closed form")
    if m1.size == 1:
        tv = _tv_normal_1d(float(m1[0]), math.sqrt(C1[0, 0]), float(m2[0]), math.sqrt(C2[0, 0]))
        return Estimate(tv, 0.0, 0, "gaussian closed form")
    lo, hi = _hellinger_tv_bounds(m1, C1, m2, C2)
    bounded = Estimate(0.5 * (lo + hi), 0.5 * (hi - lo), 0, "hellinger bounds", ci=(lo, hi))
    if hi - lo < 1e-9:  # nearly disjoint or nearly equal: the bounds already pin TV down
        return bounded
    with warnings.catch_warnings():
        warnings.simplefilter("error", scipy.integrate.IntegrationWarning)
        try:
            tv = _prob_llr_positive(m1, C1, m1, C1, m2, C2) - _prob_llr_positive(m2, C2, m1, C1, m2, C2)
        except scipy.integrate.IntegrationWarning:
            tv = math.nan
    if not lo - 1e-8 <= tv <= hi + 1e-8:  # the quadrature did not converge: say so, with the bounds
        return dataclasses.replace(bounded, method="hellinger bounds (gil-pelaez quadrature did not converge)")
    return Estimate(float(tv), 0.0, 0, "gaussian gil-pelaez")


def _hellinger_tv_bounds(m1, C1, m2, C2) -> tuple[float, float]:
    r"""Bounds :math:`1 - BC \le TV \le \sqrt{1 - BC^2}` from the Bhattacharyya coefficient
    :math:`BC = e^{-D_B}`, :math:`D_B = \tfrac18\Delta^T\bar C^{-1}\Delta + \tfrac12\log\frac{\det\bar C}{\sqrt{\det C_1\det C_2}}`,
    :math:`\bar C = (C_1 + C_2)/2`, :math:`\Delta = m_1 - m_2` (closed form)."""
    Cbar = 0.5 * (C1 + C2)
    diff = m1 - m2
    DB = 0.125 * float(diff @ np.linalg.solve(Cbar, diff)) + 0.5 * (np.linalg.slogdet(Cbar)[1] - 0.5 * (np.linalg.slogdet(C1)[1] + np.linalg.slogdet(C2)[1]))
    bc = math.exp(-max(DB, 0.0))
    return 1 - bc, math.sqrt(max(1 - bc * bc, 0.0))


def _same_grid(p: GridLaw, q: GridLaw):
    if p.edges.shape != q.edges.shape or not np.allclose(p.edges, q.edges):
        raise ValueError("p_law and q_law must be on the same grid")


def tv_grid(p_law: GridLaw, q_law: GridLaw) -> Estimate:
    r"""Exact TV between two laws on one grid, :math:`\tfrac12\sum_i|p_i - q_i|`.

    ``se`` carries the laws' grid errors (Richardson laws) plus half the mass lost off the grid."""
    _same_grid(p_law, q_law)
    err = (p_law.grid_error or 0.0) + (q_law.grid_error or 0.0) + 0.5 * (p_law.lost + q_law.lost)
    return Estimate(0.5 * float(np.abs(p_law.masses - q_law.masses).sum()), err, p_law.masses.size, "grid")


def product_divergences(p_law: GridLaw, q_law: GridLaw, d: int, n_mc: int = 20_000, generator: np.random.Generator | None = None) -> dict[str, Estimate]:
    r"""Divergences between :math:`P = p^{\otimes d}` and :math:`Q = q^{\otimes d}` from 1-D grid laws.

    Returns a dict with

    * ``"tv"``: Monte Carlo :math:`TV = E_P[(1 - e^{-L})_+]`, :math:`L = \sum_{j\le d}\ell(X_j)`,
      :math:`\ell = \log(p_i/q_i)` on the cells, X_j drawn from p; standard error from the
      n_mc replicates; ``ci`` intersects the 95% interval with the exact bounds below;
    * ``"hellinger2"``: exact :math:`H^2 = 1 - BC^d`, :math:`BC = \sum_i\sqrt{p_iq_i}`;
    * ``"kl"``: exact :math:`KL(P\|Q) = d\sum_i p_i\log(p_i/q_i)`;
    * ``"tv_bounds"``: :math:`H^2 \le TV \le \min(\sqrt{H^2(2-H^2)}, \sqrt{KL/2}, \sqrt{1-e^{-KL}})`.
    """
    _same_grid(p_law, q_law)
    if not isinstance(d, int) or d < 1:
        raise ValueError(f"d must be an int >= 1, got {d!r}")
    p = np.clip(p_law.masses, 0, None)
    q = np.clip(q_law.masses, 0, None)
    p, q = p / p.sum(), q / q.sum()
    rng = generator if generator is not None else np.random.default_rng(0)
    with np.errstate(divide="ignore", invalid="ignore"):  # log 0 in cells the where() discards
        ell = np.where(p > 0, np.log(p) - np.log(q), 0.0)  # +inf where q = 0 < p
    bc = float(np.sqrt(p * q).sum())
    h2 = 1 - bc**d
    kl1 = float((p * np.where(p > 0, ell, 0.0)).sum()) if np.all((q > 0) | (p == 0)) else math.inf
    kl = d * kl1
    cdf = np.cumsum(p)
    vals = np.empty(n_mc)
    chunk = max(1, 2**22 // d)
    for i in range(0, n_mc, chunk):
        k = min(chunk, n_mc - i)
        idx = np.minimum(np.searchsorted(cdf, rng.random((k, d))), p.size - 1)
        L = ell[idx].sum(1)
        vals[i : i + k] = np.where(np.isposinf(L), 1.0, np.maximum(0.0, -np.expm1(-L)))
    tv = float(vals.mean())
    se = float(vals.std(ddof=1) / math.sqrt(n_mc))
    upper = min(math.sqrt(max(h2 * (2 - h2), 0.0)), math.sqrt(kl / 2) if math.isfinite(kl) else 1.0, math.sqrt(-math.expm1(-kl)) if math.isfinite(kl) else 1.0)
    bounds = (max(h2, 0.0), upper)
    ci = (max(tv - 1.96 * se, bounds[0]), min(tv + 1.96 * se, bounds[1]))
    return {
        "tv": Estimate(tv, se, n_mc, "product monte carlo LLR", ci=ci, extra={"d": d}),
        "hellinger2": Estimate(h2, 0.0, p.size, "product exact"),
        "kl": Estimate(kl, 0.0, p.size, "product exact"),
        "tv_bounds": Estimate(0.5 * (bounds[0] + bounds[1]), 0.5 * (bounds[1] - bounds[0]), p.size, "hellinger/KL bounds", ci=bounds),
    }


def _bin_masses(target, alpha, sigma, edges_list) -> np.ndarray:
    """Exact bin masses of the target's noisy law by Gauss-Legendre (8 nodes per axis per bin)."""
    nodes, weights = np.polynomial.legendre.leggauss(8)
    axes, axw = [], []
    for e in edges_list:
        half = 0.5 * np.diff(e)
        mid = 0.5 * (e[1:] + e[:-1])
        axes.append((mid[:, None] + half[:, None] * nodes[None]).ravel())
        axw.append((half[:, None] * weights[None]).ravel())
    if len(edges_list) == 1:
        pts, w = axes[0][:, None], axw[0]
        shape = (edges_list[0].size - 1,)
    else:
        gx, gy = np.meshgrid(axes[0], axes[1], indexing="ij")
        pts, w = np.stack([gx.ravel(), gy.ravel()], 1), np.outer(axw[0], axw[1]).ravel()
        shape = (edges_list[0].size - 1, edges_list[1].size - 1)
    dens = torch.exp(target.log_prob(torch.from_numpy(pts), alpha, sigma)).numpy()
    mass = dens * w
    if len(edges_list) == 1:
        return mass.reshape(shape[0], 8).sum(1)
    return mass.reshape(shape[0], 8, shape[1], 8).sum((1, 3))


def _hist_tv(x: np.ndarray, edges_list, P: np.ndarray) -> float:
    counts = np.histogramdd(x, bins=edges_list)[0] / x.shape[0]
    inside = counts.sum()
    return 0.5 * (float(np.abs(counts - P).sum()) + abs((1 - inside) - (1 - P.sum())))


def tv_histogram(x, target, alpha: float = 1.0, sigma: float = 0.0, bins: int = 50, bootstrap: int = 200, generator: torch.Generator | None = None) -> Estimate:
    r"""Histogram TV between samples ``x`` and a target's known noisy law, for d <= 2.

    :math:`\tfrac12\sum_b|\hat P_b - P_b|` plus the mass outside the bins, over ``bins`` equal
    bins per axis spanning the samples and a target sample. Standard error by bootstrap over x;
    the floor is the same estimator on a sample of the target of the same size. The
    histogram's discretisation makes it a lower bound on the TV between the laws, and its
    sampling noise an upward bias of the size of the floor."""
    X = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != target.d:
        raise ValueError(f"x must have shape (n, {target.d}), got {X.shape}")
    if target.d > 2:
        raise ValueError(f"tv_histogram needs d <= 2, got d={target.d}")
    if X.shape[0] < 20:
        raise ValueError(f"too few samples: n = {X.shape[0]} < 20")
    if not np.isfinite(X).all():
        raise ValueError("x contains NaN or inf")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    R = target.sample_noisy(X.shape[0], alpha, sigma, generator=g).numpy()
    both = np.concatenate([X, R])
    lo, hi = np.quantile(both, 0.001, axis=0), np.quantile(both, 0.999, axis=0)
    edges_list = [np.linspace(lo[j], hi[j], bins + 1) for j in range(target.d)]
    P = _bin_masses(target, alpha, sigma, edges_list)
    rng = np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=g)))
    value = _hist_tv(X, edges_list, P)
    boots = [_hist_tv(X[rng.integers(0, X.shape[0], X.shape[0])], edges_list, P) for _ in range(bootstrap)]
    floor = _hist_tv(R, edges_list, P)
    floor_boot = [_hist_tv(R[rng.integers(0, R.shape[0], R.shape[0])], edges_list, P) for _ in range(bootstrap)]
    return Estimate(value, float(np.std(boots, ddof=1)), X.shape[0], "histogram", floor, float(np.std(floor_boot, ddof=1)), extra={"bins": bins})


def _classifier_accuracy(X, Y, generator, hidden, steps, lr) -> tuple[float, int]:
    n = min(X.shape[0], Y.shape[0])
    perm_x = torch.randperm(X.shape[0], generator=generator)[:n]
    perm_y = torch.randperm(Y.shape[0], generator=generator)[:n]
    X, Y = X[perm_x], Y[perm_y]
    half = n // 2
    data = torch.cat([X, Y])
    mu, sd = data.mean(0), data.std(0) + 1e-12
    train = (torch.cat([X[:half], Y[:half]]) - mu) / sd
    test = (torch.cat([X[half:], Y[half:]]) - mu) / sd
    lab_train = torch.cat([torch.ones(half), torch.zeros(half)]).double()
    lab_test = torch.cat([torch.ones(n - half), torch.zeros(n - half)]).double()
    d = X.shape[1]
    lin1 = torch.nn.Linear(d, hidden, dtype=torch.float64)
    lin2 = torch.nn.Linear(hidden, hidden, dtype=torch.float64)
    lin3 = torch.nn.Linear(hidden, 1, dtype=torch.float64)
    for lin in (lin1, lin2, lin3):
        torch.nn.init.normal_(lin.weight, 0, 1 / math.sqrt(lin.in_features), generator=generator)
        torch.nn.init.zeros_(lin.bias)
    net = torch.nn.Sequential(lin1, torch.nn.SiLU(), lin2, torch.nn.SiLU(), lin3)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(train)[:, 0], lab_train)
        loss.backward()
        opt.step()
    with torch.no_grad():
        acc = float(((net(test)[:, 0] > 0).double() == lab_test).double().mean())
    return acc, test.shape[0]


def tv_classifier(x, y, generator: torch.Generator | None = None, reference=None, hidden: int = 64, steps: int = 500, lr: float = 1e-2) -> Estimate:
    r"""Classifier two-sample lower bound: any classifier's balanced held-out accuracy
    satisfies :math:`acc \le (1 + TV)/2`, so :math:`TV \ge 2\,acc - 1`.

    A small MLP is trained on half of each sample (full-batch Adam) and tested on the other
    half. ``value`` = 2 acc - 1, ``se`` its binomial standard error, ``ci`` = (one-sided 95%
    lower confidence bound, 1). With ``reference`` (a second sample of y's law) the floor is
    the same procedure between y and reference."""
    X = torch.as_tensor(x, dtype=torch.float64)
    Y = torch.as_tensor(y, dtype=torch.float64)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[1] != Y.shape[1]:
        raise ValueError(f"x and y must have shapes (n, d) with one d, got {tuple(X.shape)} and {tuple(Y.shape)}")
    if min(X.shape[0], Y.shape[0]) < 20:
        raise ValueError("too few samples: need n >= 20 in each")
    if not (torch.isfinite(X).all() and torch.isfinite(Y).all()):
        raise ValueError("x or y contains NaN or inf")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    acc, n_test = _classifier_accuracy(X, Y, g, hidden, steps, lr)
    se = 2 * math.sqrt(max(acc * (1 - acc), 1e-12) / n_test)
    floor = floor_se = None
    if reference is not None:
        facc, _ = _classifier_accuracy(torch.as_tensor(reference, dtype=torch.float64), Y, g, hidden, steps, lr)
        floor, floor_se = 2 * facc - 1, 2 * math.sqrt(max(facc * (1 - facc), 1e-12) / n_test)
    return Estimate(2 * acc - 1, se, n_test, "classifier lower bound", floor, floor_se, ci=(2 * acc - 1 - 1.645 * se, 1.0))
