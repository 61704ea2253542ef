r"""Exact laws in any dimension for rotation-invariant targets, through the law of the radius.

A target is rotation-invariant when its law is invariant under every orthogonal map of
:math:`\mathbb{R}^d`: mixtures of isotropic Gaussians, centred spheres and Gaussian-smoothed spheres
(:class:`cmtheory.targets.RadialMixture`; isotropic scale mixtures ``GaussianMixture`` and the
``Sphere`` with k = d are such, :func:`as_radial_mixture`), and their noisy laws. Then:

* the score is radial, :math:`s_t(x) = \psi_t(r)\,x/r`, :math:`r = |x|` (the log-density is a
  function of r), and :math:`\psi_t(r)` is the first coordinate of the target's own score at
  :math:`r e_1` (:func:`radial_score`, from :meth:`cmtheory.targets.RadialMixture.radial_profile`);
* a step :math:`Y' = m(Y) + M(Y) Z` whose mean map and noise commute with rotations keeps a
  rotation-invariant law (the step's law is the rotated step's law), so the law is that of
  :math:`R = |Y|` times an independent uniform direction;
* TV and :math:`W_p` between two rotation-invariant laws equal TV and :math:`W_p` between their
  radial laws: the densities are :math:`f(r)/(|S^{d-1}| r^{d-1})` on each sphere, so the TV
  integral factorises; :math:`|x - y| \ge ||x| - |y||` with equality along a ray, so coupling the
  radii monotonically along a shared direction is optimal. :func:`cmtheory.metrics.tv_grid` and
  :func:`cmtheory.metrics.w_grid` therefore apply to the radial laws as they are.

One step, given :math:`R = r` and :math:`u = Y/r`: :math:`Y' = m(r) u + \sigma_r Z_1 u + \sigma_\perp Z_\perp`
with :math:`Z_1 \sim N(0, 1)` and :math:`Z_\perp` standard in the d - 1 directions orthogonal to u,

.. math:: |Y'|^2 = A^2 + \sigma_\perp^2 C, \qquad A = m(r) + \sigma_r Z_1, \quad C \sim \chi^2_{d-1}.

DDPM and the ICML 2024 sampler's half-steps have isotropic constant noise,
:math:`\sigma_r = \sigma_\perp = c`; then (:func:`propagate_radial`)

1. A: the cells of the radius grid go through m and are convolved with N(0, c^2), exactly the
   1-D engine of :mod:`cmtheory.laws.grid`, onto a grid of A's own: the radius cells extended
   down to where :math:`A^2 + \mu` can still reach the radius grid (:func:`_a_grid`; in high d
   m pulls the radius far below the law's range), mirrored about 0 and folded back
   (:math:`|A|`; m is odd along a line through the origin, m(0) = 0) when it reaches the origin;
2. :math:`\rho = A^2 + \mu`, :math:`\mu = (d-1)c^2` the mean of the tangential term: the law,
   uniform within each radius cell, is rebinned exactly onto a uniform grid in :math:`\rho`
   (:func:`_rho_cells`), by its CDF at :math:`\sqrt{\rho_j - \mu}`;
3. :math:`\rho + c^2(C - (d-1))`: an FFT convolution with the exact cell-to-cell kernel of the
   centred :math:`c^2\chi^2_{d-1}`, :math:`K_j = [I((j+1)h+\mu) - 2I(jh+\mu) + I((j-1)h+\mu)]/h`,
   :math:`I(y) = \int_0^y F = yF(y) - \mu P(\tfrac{d+1}{2}, \tfrac{y}{2c^2})`,
   :math:`F(y) = P(\tfrac{d-1}{2}, \tfrac{y}{2c^2})` (P the regularised lower gamma function).
   The mean shift, about :math:`\beta_t d/(2r)` in radius per step, is taken by the exact rebin
   of step 2, not by the convolution: a kernel that shifts by a fraction of a cell would smear
   each cell over its neighbour, a numerical diffusion that accumulates over the steps;
4. the law, uniform within each :math:`\rho` cell, is rebinned back onto the radius grid by its
   CDF at the squared radius edges.

The exact-covariance step's noise :math:`c(I + \tfrac{\beta}{2}H)` has
:math:`\sigma_r = c(1 + \beta\psi'/2)` and :math:`\sigma_\perp = c(1 + \beta\psi/(2r))`, both varying
with r. Step 1 takes a varying :math:`\sigma_r` as the 1-D engine does. The tangential term is
taken in runs of cells with nearly equal :math:`S = (d-1)\sigma_\perp^2`: each run through steps
2-4 with the kernel of its mean :math:`\bar S`, each cell's excess :math:`S - \bar S` carried into
:math:`A^2` by the run's mean map (:func:`propagate_radial`). The radial score and Hessian come from
:meth:`cmtheory.targets.RadialMixture.radial_profile`'s terms (:func:`radial_score`,
:func:`radial_hvp`; P K work per evaluation instead of P d).

A law is held uniform within each cell (in r, or in :math:`\rho` between steps 2 and 4), and the
mean map is linear within a cell, so a step errs by :math:`O(h^2)` like the 1-D engine while the
per-step noise c is wider than a cell; :func:`cmtheory.laws.richardson_law` removes the :math:`h^2` term
and measures what is left. Cells wider than the noise of the last steps, :math:`\sqrt{\beta_1}`,
smear the law the same way (two-scale mixture in d = 4096 at T = 1000, :math:`\sqrt{\beta_1} = 0.01`: cells of 0.092, 0.046,
0.023 and 0.012 give TV 0.28, 0.11, 0.047 and 0.034, unextrapolated), so
grids should have cells of at most :math:`\sqrt{\beta_1}`. Mass leaving the grid is counted in ``lost``.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.optimize
import scipy.signal
import scipy.special
import scipy.stats
import torch

from cmtheory.laws.grid import GridLaw, Transition, _convolve_normal, _law_from_cdf, _push_with_extra_noise
from cmtheory.processes import DiscreteVP
from cmtheory.targets import GaussianMixture, RadialMixture, Sphere

__all__ = [
    "as_radial_mixture",
    "check_rotation_invariant",
    "radial_cdf",
    "radial_law",
    "radial_score",
    "radial_hvp",
    "propagate_radial",
    "radial_markov_law",
    "start_radial_cdf",
    "start_radial_law",
    "radius_span",
    "check_equivariant",
]



def _rho_cells(e: np.ndarray, spread: float, cap: int = 2**21) -> int:
    r"""Cells of the uniform :math:`\rho = r^2` grid (at most ``cap``): at least 4 per radius cell,
    and at most 1/8 of ``spread``, the standard deviation of the tangential term, so that the
    kernel of step 3 is resolved (a kernel narrower than a cell spreads each cell's mass over
    its neighbours, a numerical diffusion of order :math:`h_\rho` that accumulates over the steps)."""
    span = e[-1] ** 2 - e[0] ** 2
    return int(min(math.ceil(max(4 * (e.size - 1), 8 * span / spread if spread > 0 else 0.0)), cap))


def _origin_cells(e: np.ndarray, masses: np.ndarray, tol: float = 1e-6, cap: int = 2**21) -> int:
    r"""In d = 2 the tangential term :math:`c^2\chi^2_1` and the law of :math:`A^2` are both singular
    at 0 (:math:`\rho^{-1/2}`), so there a :math:`\rho` cell is also at most one radius cell wide from
    :math:`r_*` up, :math:`h_\rho \le h\max(h, 2 r_*)`, :math:`r_*` the first edge below which the law
    has more than ``tol`` mass (without it the error near the origin falls like :math:`\sqrt{h_\rho}`,
    measured). For d >= 3 the tangential law is smooth at 0 on the scale :func:`_rho_cells`
    resolves (d = 8, T = 200: TV changes by 5e-6 with this rule, at 16x the cost)."""
    h = float(e[1] - e[0])
    r_star = e[min(int(np.searchsorted(np.cumsum(masses), tol)), e.size - 1)]
    return int(min(math.ceil((e[-1] ** 2 - e[0] ** 2) / (h * max(h, 2 * r_star))), cap))


def as_radial_mixture(target) -> RadialMixture:
    r"""The rotation-invariant ``target`` as a :class:`cmtheory.targets.RadialMixture`, which holds the
    radial formulas of every rotation-invariant target: itself; a GaussianMixture with zero means
    and isotropic variances :math:`c_k` (radii 0, widths :math:`\sqrt{c_k}`); a Sphere with k = d
    (one component of width 0).

    Parameters
    ----------
    target : RadialMixture, GaussianMixture or Sphere

    Returns
    -------
    RadialMixture

    Raises
    ------
    ValueError
        Naming ``target`` when it is not rotation-invariant.
    """
    if isinstance(target, RadialMixture):
        return target
    if "_radial_mixture" in target.__dict__:  # one conversion per target, so that its radial profile's memo is shared
        return target.__dict__["_radial_mixture"]
    mixture = _convert(target)
    target.__dict__["_radial_mixture"] = mixture
    return mixture


def _convert(target) -> RadialMixture:
    """A GaussianMixture scale mixture or a Sphere with k = d as a RadialMixture; ValueError otherwise."""
    if isinstance(target, GaussianMixture):
        if target.kind == "isotropic" and bool((target.means == 0).all()):
            return RadialMixture(target.d, target.weights, torch.zeros(target.K, dtype=torch.float64), target.covs.sqrt())
        why = f"a GaussianMixture with {target.kind} covariances and means of largest norm {float(target.means.norm(dim=1).max()):.3g}"
    elif isinstance(target, Sphere):
        if target.k == target.d:
            return RadialMixture(target.d, [1.0], [target.radius], [0.0])
        why = f"a Sphere with k={target.k} < d={target.d} (a sphere in a subspace)"
    else:
        why = f"a {type(target).__name__}"
    raise ValueError(
        f"target must be rotation-invariant (a RadialMixture, a GaussianMixture with zero means and isotropic covariances, "
        f"or a Sphere with k = d); got {why}"
    )


def check_rotation_invariant(target) -> None:
    """ValueError naming ``target`` unless it is rotation-invariant (:func:`as_radial_mixture`).

    Parameters
    ----------
    target : Target

    Raises
    ------
    ValueError
        Naming the target's kind.
    """
    as_radial_mixture(target)


def _chi_cdf(d: int, v, r: np.ndarray) -> np.ndarray:
    r""":math:`P(|\sqrt v Z| \le r) = P(d/2, r^2/(2v))` for Z standard in :math:`\mathbb{R}^d`."""
    return scipy.special.gammainc(d / 2, np.asarray(r, dtype=np.float64) ** 2 / (2 * v))


def radial_cdf(target, alpha: float, sigma: float, r: np.ndarray) -> np.ndarray:
    r"""CDF of :math:`|X|`, :math:`X = \alpha X_0 + \sigma Z`, for a rotation-invariant target
    (:meth:`cmtheory.targets.RadialMixture.radial_cdf`: a mixture of noncentral :math:`\chi_d` laws;
    scale mixtures :math:`\sum_k w_k P(d/2, r^2/(2 v_k))`, :math:`v_k = \alpha^2 c_k + \sigma^2`)."""
    return as_radial_mixture(target).radial_cdf(r, alpha, sigma)


def radial_law(target, alpha: float, sigma: float, edges: np.ndarray) -> GridLaw:
    r"""Exact cell masses, on the radius grid ``edges``, of :math:`|X|`, :math:`X = \alpha X_0 + \sigma Z`
    (:func:`radial_cdf`); TV and :math:`W_p` to another radial law are those of the d-dimensional laws."""
    return _law_from_cdf(np.asarray(edges, dtype=np.float64), radial_cdf(target, alpha, sigma, edges))


def _radial_curvatures(target: RadialMixture, x: torch.Tensor, alpha, sigma) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r""":math:`\psi(r)/r`, :math:`\psi'(r)` (shape (P, 1)) and the unit vectors u = x/r at the points x of
    any number of columns, from :meth:`cmtheory.targets.RadialMixture.radial_profile` (at the origin
    u = 0 and :math:`\psi/r \to \psi'(0)`: the Hessian is isotropic there)."""
    r = x.norm(dim=1)
    psi, dpsi = target.radial_profile(r, alpha, sigma)
    safe = torch.where(r > 0, r, torch.ones_like(r))
    g = torch.where(r > 0, psi / safe, dpsi)[:, None]
    return g, dpsi[:, None], x / safe[:, None]


def radial_score(target):
    r"""The target's score on the span of its first axes: ``score(x, alpha, sigma)`` for x of shape
    (P, j), j <= d, is the first j coordinates of the score at (x, 0, ..., 0).

    At :math:`x = r e_1` it is :math:`(\psi(r), 0, \dots)`: with j = 1 the radial profile
    :math:`\psi` as a 1-D score of r; with j = 2 the plane of the radius and one tangential
    direction, where a step's radial and tangential noise are read (:func:`propagate_radial`).
    :math:`s(x) = (\psi(r)/r)\,x` from the radial profile
    (:meth:`cmtheory.targets.RadialMixture.radial_profile`, :func:`as_radial_mixture`): P K work
    (K components) instead of the P d of a score in :math:`\mathbb{R}^d`.

    Parameters
    ----------
    target : RadialMixture, GaussianMixture or Sphere
        Rotation-invariant.

    Returns
    -------
    callable
        ``score(x, alpha, sigma)``.
    """
    mixture = as_radial_mixture(target)
    return lambda x, alpha, sigma: _radial_curvatures(mixture, x, alpha, sigma)[0] * x


def radial_hvp(target):
    r"""The Hessian-vector product of :math:`\log q` on the span of the first axes, like
    :func:`radial_score`: ``hvp(x, v, alpha, sigma)`` for x and v of shape (P, j). At :math:`x = r u`
    the Hessian is :math:`\psi'(r)\,uu^\top + (\psi(r)/r)(I - uu^\top)`, so at u = e_1, v = (1, 1)
    gives :math:`(\psi'(r), \psi(r)/r)`.

    Parameters
    ----------
    target : RadialMixture, GaussianMixture or Sphere
        Rotation-invariant.

    Returns
    -------
    callable
        ``hvp(x, v, alpha, sigma)``.
    """
    mixture = as_radial_mixture(target)

    def hvp(x: torch.Tensor, v: torch.Tensor, alpha, sigma) -> torch.Tensor:
        g, dpsi, u = _radial_curvatures(mixture, x, alpha, sigma)
        along = (u * v).sum(1, keepdim=True) * u
        return g * (v - along) + dpsi * along

    return hvp


def _fold(masses: np.ndarray, N: int) -> np.ndarray:
    """Masses on the grid mirrored about 0 (2N cells) -> masses of |A| on the N cells of [0, hi]."""
    return masses[N:] + masses[:N][::-1]


def _rebin(masses: np.ndarray, edges: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Masses, uniform within each cell of ``edges``, of the cells between the points ``at``
    (increasing, inside [edges[0], edges[-1]]): differences of the piecewise-linear CDF."""
    return np.diff(np.interp(at, edges, np.concatenate([[0.0], np.cumsum(masses)])))


def _centred_chi2_cell_kernel(k: int, c: float, h: float, cells: int, tail: float = 1e-17, nodes: int = 8) -> tuple[np.ndarray, int]:
    r"""Cell-to-cell masses :math:`K_j` of the centred :math:`c^2(\chi^2_k - k)` added to a uniform cell
    of width h (module docstring, step 3), for :math:`j_0 \le j`, up to the :math:`1 - 10^{-17}`
    quantile and at most ``cells`` cells either way (mass beyond leaves a grid of that many cells
    anyway); returns (K, :math:`j_0`).

    With :math:`\mu = kc^2`, :math:`K_j = [I((j+1)h+\mu) - 2I(jh+\mu) + I((j-1)h+\mu)]/h`; this
    second difference is exact but loses :math:`\epsilon\,y/h^2` to cancellation. Where the law's
    standard deviation :math:`c^2\sqrt{2k}` exceeds 4h, F is smooth on the scale of a cell and,
    three cells beyond the lower end of the support on, :math:`K_j = \frac1h\int_0^h [F((j+1)h+\mu-x) - F(jh+\mu-x)]\,dx`
    by ``nodes``-point Gauss-Legendre, each difference of F taken on the side of the mean where it
    is small (P or 1 - P)."""
    a, s2, mu = k / 2, 2 * c * c, k * c * c
    j0 = max(-int(math.ceil(mu / h)) - 1, -cells)
    j1 = min(int(math.ceil((scipy.special.gammainccinv(a, tail) * s2 - mu) / h)) + 2, cells)
    smooth = c * c * math.sqrt(2 * k) > 4 * h
    y = np.arange(j0 - 1, (j0 + 3 if smooth else j1) + 1, dtype=np.float64) * h + mu
    yp = np.maximum(y, 0.0)
    I = yp * scipy.special.gammainc(a, yp / s2) - mu * scipy.special.gammainc(a + 1, yp / s2)
    head = (I[2:] - 2 * I[1:-1] + I[:-2]) / h
    if not smooth:
        return np.clip(head, 0.0, None), j0
    x, w = np.polynomial.legendre.leggauss(nodes)
    x, w = 0.5 * h * (x + 1), 0.5 * w
    z = (np.arange(j0 + 3, j1 + 2, dtype=np.float64)[:, None] * h + mu - x) / s2  # rows j0 + 3 .. j1 + 1
    upper = z[:-1] > a  # beyond the mean: 1 - P is the small side (each F once, on the side it is needed)
    need_q = np.zeros(z.shape, dtype=bool)
    need_q[:-1] |= upper
    need_q[1:] |= upper
    need_p = np.zeros(z.shape, dtype=bool)
    need_p[:-1] |= ~upper
    need_p[1:] |= ~upper
    P, Q = np.zeros(z.shape), np.zeros(z.shape)
    P[need_p] = scipy.special.gammainc(a, z[need_p])
    Q[need_q] = scipy.special.gammaincc(a, z[need_q])
    diff = np.where(upper, Q[:-1] - Q[1:], P[1:] - P[:-1])
    return np.clip(np.concatenate([head[:3], diff @ w]), 0.0, None), j0


def _radial_noise_step(law: GridLaw, cells: slice, m: np.ndarray, s_r: np.ndarray, s0: float, a_edges: np.ndarray) -> tuple[np.ndarray, float]:
    r"""Step 1 for the radius cells ``cells``: their masses through the mean map (``m`` at their
    edges) plus :math:`N(0, \sigma_{r,i}^2)` (``s_r`` per cell, none below ``s0``), by the 1-D
    engine onto the uniform grid ``a_edges`` of A (:func:`_a_grid`), mirrored about 0 and folded
    (:math:`|A|`) when it starts at 0. Returns the masses of :math:`|A|` on ``a_edges`` and the
    mass that left it."""
    mirrored = a_edges[0] == 0
    pushed, lost = _push_with_extra_noise(law.masses[cells], m, np.sqrt(np.maximum(s_r**2 - s0 * s0, 0.0)), np.concatenate([-a_edges[::-1], a_edges[1:]]) if mirrored else a_edges)
    A = _convolve_normal(pushed, s0, float(a_edges[1] - a_edges[0]))
    lost += float(pushed.sum() - A.sum())
    return (_fold(A, a_edges.size - 1) if mirrored else A), lost


def _a_grid(e: np.ndarray, mu_max: float) -> np.ndarray:
    r"""The grid of :math:`|A|` for a step onto the radius grid ``e``: the cells of ``e``, extended
    down to :math:`\sqrt{e_0^2 - \mu_{max}}` (:math:`\mu_{max}` the largest tangential mean), below
    which :math:`A^2 + \mu` falls below the :math:`\rho` grid (it starts at :math:`e_0^2`; that mass
    is lost, as it was before A had its own grid), or to 0 when that is not positive. In high d the
    mean map pulls the radius far below the law's range before the tangential noise restores it
    (d = 4096, T = 50: m(64) = 49.6 at the first step, against a law within 64 +- 6), so A needs
    a grid of its own; same cell width."""
    h = float(e[1] - e[0])
    floor = math.sqrt(max(e[0] ** 2 - mu_max, 0.0))
    extra = int(math.ceil((e[0] - floor) / h))
    if extra == 0:
        return e
    lo = e[0] - extra * h
    if lo <= 0:  # to the origin: a grid from 0 with (nearly) the same width
        n = int(math.ceil(e[-1] / h))
        return np.linspace(0.0, e[-1], n + 1)
    return np.concatenate([lo + h * np.arange(extra), e])


def _tangential_runs(S_c: np.ndarray, S_e: np.ndarray, masses: np.ndarray, width: float, negligible: float = 1e-15) -> tuple[list[tuple[slice, float]], float]:
    r"""Runs of consecutive cells whose tangential mean :math:`S = (d-1)\sigma_\perp^2` (``S_c`` at the
    centres) falls in one bin of ``width``, each with the least S over its edges (``S_e``), so
    that every cell's excess over it is >= 0. Cells holding at most ``negligible`` of the mass
    are trimmed from the ends of each run (far from the law a state-dependent noise can be
    extreme, and the 1-D engine's band follows the largest noise of a run); returns the runs
    and the mass trimmed."""
    bins = np.floor((S_c - S_c.min()) / width).astype(np.int64)
    starts = np.flatnonzero(np.concatenate([[True], bins[1:] != bins[:-1]]))
    runs, total = [], float(masses.sum())
    heavy = masses > negligible * total
    for a, b in zip(starts, np.append(starts[1:], S_c.size)):
        held = np.flatnonzero(heavy[a:b])
        if held.size:
            a, b = a + held[0], a + held[-1] + 1
            runs.append((slice(int(a), int(b)), float(S_e[a : b + 1].min())))
    kept = sum(float(masses[run].sum()) for run, _ in runs)
    return runs, max(total - kept, 0.0)


def _absorb_tangential_mean(m: np.ndarray, s_r: np.ndarray, dS: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""The mean map and radial noise of a run of cells that carry the cells' own tangential mean
    :math:`\Delta S` beyond the run's (``dS`` at the edges, ``m`` at the edges, ``s_r`` per cell):
    :math:`\tilde m = \operatorname{sign}(m)\sqrt{m^2 + \Delta S}`, :math:`\tilde\sigma_r = \sigma_r m/\tilde m`
    (m and :math:`\tilde m` at the centre as the mean of the edges'). Then
    :math:`(\tilde m + \tilde\sigma_r Z)^2 = (m + \sigma_r Z)^2 + \Delta S - \sigma_r^2 Z^2\,\Delta S/\tilde m^2`:
    exact but for the last term, :math:`\Delta S\,\sigma_r^2/\tilde m^2` of the shift itself."""
    if not dS.any():
        return m, s_r
    mt = np.sign(m) * np.sqrt(m * m + dS)
    mc, mtc = 0.5 * (m[1:] + m[:-1]), 0.5 * (mt[1:] + mt[:-1])
    return mt, np.abs(s_r * np.where(mtc != 0, mc / np.where(mtc != 0, mtc, 1.0), 1.0))


def _held_radii(law: GridLaw) -> np.ndarray:
    """Three radii where the law holds its mass (the cell centres at its quartiles), all > 0."""
    cdf = np.cumsum(np.clip(law.masses, 0.0, None))
    at = np.searchsorted(cdf, np.array([0.25, 0.5, 0.75]) * cdf[-1]).clip(0, law.masses.size - 1)
    return np.maximum(law.centers[at], law.h)


def _cell_noise(transition: Transition, law: GridLaw, j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""The mean map and the noise scales at the edges, and the noise scales per cell, shapes
    (N+1,), (N+1, j) and (N, j): the transition is evaluated at the points :math:`(r, 0)` of the
    plane of the radius and one tangential direction (j = 2; j = 1 in d = 1), its noise at
    z = 1; a noise that varies is read at the cell centres, as in the 1-D engine."""

    def at(r: np.ndarray):
        x = torch.zeros(r.size, j, dtype=torch.float64)
        x[:, 0] = torch.from_numpy(r)
        tr = transition(x)
        return tr.mean[:, 0].numpy(), tr.noise(torch.ones_like(x)).abs().numpy()

    m, s = at(law.edges)
    if np.allclose(s, s[:1], rtol=1e-12, atol=0):
        return m, s, s[:-1]
    return m, s, at(law.centers)[1]


def propagate_radial(law: GridLaw, transition: Transition, d: int) -> GridLaw:
    r"""One step :math:`Y' = m(r)u + \sigma_r(r) Z_1 u + \sigma_\perp(r) Z_\perp` of a rotation-invariant
    law held as its radial law (module docstring, steps 1-4).

    ``transition`` must be rotation-equivariant (:func:`check_equivariant`, tested at three radii
    where the law holds its mass; a ValueError otherwise). ``transition(x)`` maps the points :math:`x = (r, 0)` of shape (P, 2) (the radius and one
    tangential direction; shape (P, 1) in d = 1) to a GaussianTransition: the first column of
    its mean is :math:`m(r)` (m(0) = 0), its noise at z = 1 is :math:`(\sigma_r, \sigma_\perp)`; the
    samplers' transitions on :func:`radial_score` and :func:`radial_hvp` are such maps; a cell's
    noise scales are read at its centre (:func:`_cell_noise`).

    A state-dependent :math:`\sigma_\perp` (the exact-covariance step): the cells are split into
    runs whose tangential means :math:`S = (d-1)\sigma_\perp^2` fall in one bin of a :math:`\rho`
    cell's width, each run through steps 2-4 with the kernel of its least :math:`\bar S`; each
    cell's own excess :math:`S - \bar S \ge 0` is carried by the run's mean map
    (:func:`_absorb_tangential_mean`), so the tangential mean follows the radius cell by cell.
    (Replacing S by the run's mean alone biases the chain: in d = 64 at T = 200 the TV moved
    from 0.0013 to 0.0058 with one run.) Cells holding at most 1e-15 of the mass are trimmed from
    the ends of the runs and counted in ``lost``. A constant
    :math:`\sigma_\perp` is one run. ``law.edges`` must start at 0 or above; when they start at 0
    the step is exact through the origin, otherwise mass pushed below the first edge is counted in
    ``lost``.
    """
    e, N = law.edges, law.masses.size
    if e[0] < 0:
        raise ValueError(f"law must be a law of the radius: its edges start at {e[0]} < 0")
    check_equivariant(transition, _held_radii(law), d)
    m, s_e, s_c = _cell_noise(transition, law, min(d, 2))
    if e[0] == 0 and m[0] != 0:
        raise ValueError(f"transition's mean map must send the origin to itself (an equivariant step), got m(0) = {m[0]:.3g}")
    if d == 1:  # one run, trimmed like the runs below (the 1-D engine's band follows its largest noise)
        runs, lost = _tangential_runs(np.zeros(N), np.zeros(N + 1), law.masses, 1.0)
        if not runs:
            return GridLaw(e, np.zeros(N), law.lost + lost)
        run = runs[0][0]
        A, lost_a = _radial_noise_step(law, run, m[run.start : run.stop + 1], s_c[run, 0], float(s_c[run, 0].min()), e)
        return GridLaw(e, A, law.lost + max(lost + lost_a, 0.0))
    k = d - 1
    S_e, S_c = k * s_e[:, 1] ** 2, k * s_c[:, 1] ** 2
    if not S_c.min() > 0:
        raise ValueError("the step's tangential noise is zero at some radius (a deterministic step, e.g. DDPM's posterior variance at t = 1): the radial "
                         "Markov engine needs noise across the radius; stop the chain before it (t_stop) or give the sampler as a deterministic map")
    cells = _rho_cells(e, float(S_c.min()) * math.sqrt(2 / k))
    runs, lost = _tangential_runs(S_c, S_e, law.masses, (e[-1] ** 2 - e[0] ** 2) / cells)
    if not runs:  # no mass left on the grid
        return GridLaw(e, np.zeros(N), law.lost + lost)
    maps = [_absorb_tangential_mean(m[run.start : run.stop + 1], s_c[run, 0], S_e[run.start : run.stop + 1] - mu) for run, mu in runs]
    s0 = min(float(sr.min()) for _, sr in maps)
    a_edges = _a_grid(e, max(mu for _, mu in runs))
    parts = []
    for (run, _), (m_run, s_run) in zip(runs, maps):
        A, lost_a = _radial_noise_step(law, run, m_run, s_run, s0, a_edges)
        parts.append(A)
        lost += lost_a
    if d == 2:
        cells = max(cells, _origin_cells(a_edges, sum(parts)))
    rho_e = np.linspace(e[0] ** 2, e[-1] ** 2, cells + 1)
    h_rho = float(rho_e[1] - rho_e[0])
    out = np.zeros(cells)
    for (_, mu), A in zip(runs, parts):
        rho = _rebin(A, a_edges, np.sqrt(np.clip(rho_e - mu, a_edges[0] ** 2, None)))
        K, j0 = _centred_chi2_cell_kernel(k, math.sqrt(mu / k), h_rho, cells)
        full = scipy.signal.fftconvolve(rho, K)
        conv = np.clip(full[-j0 : -j0 + cells] if j0 < 0 else np.concatenate([np.zeros(j0), full])[:cells], 0.0, None)
        lost += float(A.sum() - conv.sum())
        out += conv
    return GridLaw(e, _rebin(out, rho_e, e**2), law.lost + max(lost, 0.0))


def radial_markov_law(init: GridLaw, transitions, d: int) -> GridLaw:
    """The radial law after a sequence of isotropic-noise steps (:func:`propagate_radial`)."""
    law = init
    for tr in transitions:
        law = propagate_radial(law, tr, d)
    return law


def start_radial_cdf(target, schedule: DiscreteVP, start: str):
    r"""The CDF of :math:`|Y_T|` for a chain started from ``start``: ``"normal"``, :math:`Y_T \sim N(0, I_d)`
    (:math:`|Y_T| \sim \chi_d`, what a user runs), or ``"q_T"``, the chain's exact law at step T
    (:func:`radial_cdf` at the channel of step T).

    Parameters
    ----------
    target : RadialMixture, GaussianMixture or Sphere
        Rotation-invariant (:func:`check_rotation_invariant`).
    schedule : DiscreteVP
    start : {"normal", "q_T"}

    Returns
    -------
    callable
        ``cdf(r)`` on arrays of radii.
    """
    check_rotation_invariant(target)
    if start == "normal":
        return lambda r: _chi_cdf(target.d, 1.0, r)
    if start == "q_T":
        a_T, s_T = schedule.channel(schedule.T)
        return lambda r: radial_cdf(target, a_T, s_T, r)
    raise ValueError(f"start must be 'normal' or 'q_T', got {start!r}")


def radius_span(cdf, tail: float) -> tuple[float, float]:
    """Radii [lo, hi] outside which the law of the radius with CDF ``cdf`` holds at most ``tail`` at
    each end: bracketed by doubling from 1, then found by Brent's method (lo = 0 where the law
    holds at least ``tail`` at the origin).

    Parameters
    ----------
    cdf : callable
        Vectorised CDF of a law on [0, inf).
    tail : float
        In (0, 0.5).

    Returns
    -------
    (float, float)

    Raises
    ------
    ValueError
        ``tail`` out of range, or a law without a finite 1 - ``tail`` quantile.
    """
    if not 0 < tail < 0.5:
        raise ValueError(f"tail must be in (0, 0.5), got {tail!r}")
    F = lambda r: float(cdf(np.array([r]))[0])  # noqa: E731
    top = 1.0
    while F(top) < 1 - tail:
        top *= 2
        if top > 1e12:
            raise ValueError(f"cdf: the radius has no finite 1 - {tail:g} quantile")
    lo = 0.0 if F(0.0) >= tail else scipy.optimize.brentq(lambda r: F(r) - tail, 0.0, top, xtol=1e-12)
    hi = scipy.optimize.brentq(lambda r: F(r) - (1 - tail), lo, top, xtol=1e-12) if F(lo) < 1 - tail < F(top) else top
    return lo, hi


def start_radial_law(target, schedule: DiscreteVP, edges: np.ndarray, start: str) -> GridLaw:
    """Exact cell masses of :math:`|Y_T|` on the radius grid ``edges`` (:func:`start_radial_cdf`)."""
    edges = np.asarray(edges, dtype=np.float64)
    return _law_from_cdf(edges, start_radial_cdf(target, schedule, start)(edges))


def _plane_maps(j: int) -> list[torch.Tensor]:
    """Orthogonal maps that generate O(j) on the plane of the radius and one tangential direction
    (j = 2: a rotation by an irrational angle and the reflection across the radius; j = 1: -1)."""
    if j == 1:
        return [-torch.eye(1, dtype=torch.float64)]
    c, s = math.cos(0.9), math.sin(0.9)
    return [torch.tensor([[c, -s], [s, c]], dtype=torch.float64), torch.diag(torch.tensor([1.0, -1.0], dtype=torch.float64))]


def check_equivariant(step, radii: np.ndarray, d: int, rtol: float = 1e-8) -> None:
    r"""ValueError unless ``step`` commutes with rotations at the points :math:`r e_1`, r in ``radii``:
    :math:`\Phi(Qx) = Q\Phi(x)` for a map, and for a Gaussian transition
    :math:`m(Qx) = Q m(x)` and :math:`M(Qx)Qz = QM(x)z` (z = e_1, e_2), for the maps Q that
    generate O(2) on the plane of the radius and one tangential direction (:math:`\pm 1` in d = 1).

    A step that is equivariant under O(d) passes; this is what the radial engines need (the law
    of :math:`|Y'|` given :math:`|Y|` alone), and what a step that treats coordinates differently
    (a per-coordinate clip or noise scale, a constant shift) fails.

    Parameters
    ----------
    step : callable
        ``step(x)`` for x of shape (P, j), j = min(d, 2), float64: a tensor of that shape (a
        deterministic sampler's map) or a GaussianTransition (a stochastic half-step).
    radii : ndarray
        Radii r > 0 at which to test.
    d : int
        The dimension.
    rtol : float
        Tolerance relative to the largest value (round-off of float64 steps is far below it).

    Raises
    ------
    ValueError
        Naming the part (map, mean or noise) that does not commute.
    """
    j = min(d, 2)
    x = torch.zeros(len(radii), j, dtype=torch.float64)
    x[:, 0] = torch.as_tensor(np.asarray(radii, dtype=np.float64))
    basis = torch.eye(j, dtype=torch.float64)
    at_x = step(x)
    for Q in _plane_maps(j):
        at_qx = step(x @ Q.T)
        if isinstance(at_x, torch.Tensor):
            pairs = [("map", at_qx, at_x @ Q.T)]
        else:
            pairs = [("mean map", at_qx.mean, at_x.mean @ Q.T)]
            pairs += [(f"noise operator (on e_{k + 1})", at_qx.noise(basis[k].expand_as(x) @ Q.T), at_x.noise(basis[k].expand_as(x)) @ Q.T) for k in range(j)]
        for part, a, b in pairs:
            scale = max(1.0, float(b.abs().max()))
            gap = float((a - b).abs().max())
            if not gap <= rtol * scale:
                raise ValueError(f"the step is not rotation-equivariant: its {part} does not commute with rotations of R^{d} "
                                 f"(off by {gap:.3g} at radii {np.round(np.asarray(radii, dtype=float), 4).tolist()}); the radial engines need a step whose law "
                                 f"given Y depends on |Y| alone and turns with Y (use the 1-D or product engines, or Monte Carlo)")
