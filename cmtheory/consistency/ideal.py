r"""Ideal consistency training (zero learning error), Li, Huang & Wei 2024 (docs/papers.md section A).

The population minimiser of the consistency-training loss with the same noise Z in both
terms is, with :math:`f_1 = \mathrm{id}`,

.. math::
    f_t(x) = E\big[f_{t-1}(a_t x + b_t X_0) \,\big|\, X_t = x\big], \qquad
    a_t = \sqrt{\tfrac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}}, \quad
    b_t = \sqrt{\bar\alpha_{t-1}} - a_t\sqrt{\bar\alpha_t},

since :math:`\sqrt{\bar\alpha_{t-1}}X_0 + \sqrt{1-\bar\alpha_{t-1}}Z = a_t X_t + b_t X_0`. The
one-step sampler outputs :math:`f_T(X_T)`, :math:`X_T \sim N(0, I)`, and is compared with
:math:`X_1` (early stopping), as in the theorem.

* Gaussian targets :math:`N(\mu, \Sigma)`: the posterior of :math:`X_0` is
  :math:`N(Gx + g, S)`, :math:`S = (\Sigma^{-1} + \tfrac{\alpha^2}{\sigma^2}I)^{-1}`,
  :math:`G = \tfrac{\alpha}{\sigma^2}S`, :math:`g = S\Sigma^{-1}\mu`; an affine
  :math:`f_{t-1} = A_{t-1}x + c_{t-1}` gives :math:`A_t = A_{t-1}(a_tI + b_tG)`,
  :math:`c_t = c_{t-1} + b_tA_{t-1}g`: the output law is Gaussian in closed form.
* 1-D mixtures (and product targets, coordinate by coordinate: the posterior factorises):
  :math:`f_t` on a grid, the posterior expectation by Gauss-Hermite quadrature within each
  component weighted by the responsibilities, :math:`f_{t-1}` interpolated by a cubic spline
  (linear interpolation accumulates an O(T h^2) error over the T steps; the spline is exact
  for affine maps and is extended linearly beyond the grid).

Consistency errors (the :math:`\epsilon + \epsilon_{\mathcal F}` of the theorem, whose exact definitions
were not retrievable, docs/papers.md section A): a learned :math:`f'_t = K_t f'_{t-1} + \delta_t`,
:math:`K_t g(x) = E[g(a_t x + b_t X_0) \mid X_t = x]`, with a fixed per-step error field
:math:`\delta_t`. Each :math:`K_t` is an :math:`L^2` contraction from :math:`q_{t-1}` to :math:`q_t` (Jensen,
since :math:`a_tX_t + b_tX_0 \sim q_{t-1}`), so the output moves by at most the sum of the per-step
errors: :math:`\|f'_T - f_T\|_{L^2(q_T)} \le \sum_{t=2}^T\|\delta_t\|_{L^2(q_t)}`
(:func:`ideal_ct_deviation` measures how much of that sum survives).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.interpolate
import scipy.special
import scipy.stats
import torch

from cmtheory._checks import check_positive_int
from cmtheory.metrics.result import Estimate
from cmtheory.metrics.wasserstein import w2_gaussians, w_grid
from cmtheory.processes import DiscreteVP
from cmtheory.laws import GaussianTransition, check_rotation_invariant, gmm_1d_law, normal_law, propagate, pushforward_law, radial_law, uniform_grid
from cmtheory.targets import GaussianMixture

__all__ = ["ct_coefficients", "ideal_ct_gaussian", "ideal_ct_1d", "ideal_ct_radial", "ideal_ct_error", "ideal_ct_deviation"]


def ct_coefficients(schedule: DiscreteVP, t: int) -> tuple[float, float]:
    r""":math:`(a_t, b_t)` with :math:`a_t X_t + b_t X_0 = \sqrt{\bar\alpha_{t-1}}X_0 + \sqrt{1-\bar\alpha_{t-1}}Z`, t >= 2."""
    if not 2 <= t <= schedule.T:
        raise ValueError(f"t must be in 2..{schedule.T}, got {t}")
    abar = schedule.abar
    a = math.sqrt(float((1 - abar[t - 1]) / (1 - abar[t])))
    return a, math.sqrt(float(abar[t - 1])) - a * math.sqrt(float(abar[t]))


def _single_gaussian(target: GaussianMixture) -> tuple[torch.Tensor, torch.Tensor]:
    if target.K != 1:
        raise ValueError(f"the closed-form recursion needs a single Gaussian (K = 1), got K = {target.K}")
    return target.means[0], target.component_covariances()[0]


def ideal_ct_gaussian(target: GaussianMixture, schedule: DiscreteVP) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The ideal consistency function :math:`f_T(x) = A_T x + c_T` of a Gaussian target (float64)."""
    mu, Sigma = _single_gaussian(target)
    d = mu.numel()
    eye = torch.eye(d, dtype=torch.float64)
    P = torch.linalg.inv(Sigma)
    A, c = eye.clone(), torch.zeros(d, dtype=torch.float64)
    for t in range(2, schedule.T + 1):
        alpha, sigma = schedule.channel(t)
        S = torch.linalg.inv(P + (alpha**2 / sigma**2) * eye)
        G, g = (alpha / sigma**2) * S, S @ P @ mu
        a, b = ct_coefficients(schedule, t)
        A, c = A @ (a * eye + b * G), c + b * (A @ g)
    return A, c


def ideal_ct_1d(target: GaussianMixture, schedule: DiscreteVP, grid: np.ndarray, nodes: int = 24, consistency_error=None):
    r"""Values of the ideal :math:`f_T` of a 1-D mixture on ``grid`` (float64 array).

    Parameters
    ----------
    target : GaussianMixture
        A 1-D mixture.
    schedule : DiscreteVP
        The chain; T = ``schedule.T`` consistency functions.
    grid : array of shape (N,)
        Strictly increasing points where :math:`f_T` is returned (and every :math:`f_t` kept).
    nodes : int
        Gauss-Hermite nodes of each component's posterior expectation.
    consistency_error : callable, optional
        ``consistency_error(x, alpha, sigma) -> (N, 1)`` tensor: the error field :math:`\delta_t`
        added to every :math:`f_t`, t >= 2, at the channel :math:`(\alpha_t, \sigma_t)` of step t
        (e.g. the ``error`` of :func:`cmtheory.samplers.scores.controlled_perturbation`, whose
        :math:`L^2(q_t)` size is exactly its ``eps`` at every t). None: the ideal recursion.
    """
    if target.d != 1:
        raise ValueError(f"target must be a 1-D GaussianMixture, got d = {target.d}")
    x = np.asarray(grid, dtype=np.float64)
    if x.ndim != 1 or x.size < 2 or np.any(np.diff(x) <= 0):
        raise ValueError("grid must be a strictly increasing 1-D array")
    xi, wq = np.polynomial.hermite_e.hermegauss(nodes)
    wq = wq / wq.sum()
    mu = target.means[:, 0].numpy()
    var = target.component_covariances()[:, 0, 0].numpy()
    xt = torch.from_numpy(x)[:, None]
    f = x.copy()  # f_1 = id
    for t in range(2, schedule.T + 1):
        alpha, sigma = schedule.channel(t)
        r = target.responsibilities(xt, alpha, sigma).numpy()  # (N, K)
        s2 = 1 / (1 / var + alpha**2 / sigma**2)  # (K,)
        m = s2 * (mu / var + alpha * x[:, None] / sigma**2)  # (N, K)
        a, b = ct_coefficients(schedule, t)
        pts = a * x[:, None, None] + b * (m[:, :, None] + np.sqrt(s2)[None, :, None] * xi)
        f = (r * (_spline(x, f, pts) @ wq)).sum(1)
        if consistency_error is not None:
            f = f + _error_values(consistency_error, x, alpha, sigma)
    return f


def _spline(x: np.ndarray, values: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """The cubic spline through (x, values) at ``pts``, extended linearly beyond x (exact for affine maps)."""
    spline = scipy.interpolate.CubicSpline(x, values)
    inner = spline(np.clip(pts, x[0], x[-1]))
    lo_slope, hi_slope = spline(x[0], 1), spline(x[-1], 1)
    inner = np.where(pts < x[0], values[0] + lo_slope * (pts - x[0]), inner)
    return np.where(pts > x[-1], values[-1] + hi_slope * (pts - x[-1]), inner)


def _chi2_quadrature(k: int, nodes: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Nodes and weights for :math:`E[g(C)]`, :math:`C \sim \chi^2_k`: Gauss-Legendre in the quantile
    u, :math:`C = F^{-1}(u)` (generalised Gauss-Laguerre overflows its weights beyond k ~ 500);
    :math:`C = 0` for k = 0."""
    if k == 0:
        return np.zeros(1), np.ones(1)
    u, w = np.polynomial.legendre.leggauss(nodes)
    return scipy.stats.chi2.ppf(0.5 * (u + 1), k), 0.5 * w


def ideal_ct_radial(target: GaussianMixture, schedule: DiscreteVP, radii: np.ndarray, nodes: int = 24, chi_nodes: int = 24) -> np.ndarray:
    r"""The radial profile :math:`\phi_T` of the ideal consistency function :math:`f_T(x) = \phi_T(|x|)\,x/|x|`
    of an isotropic Gaussian scale mixture :math:`\sum_k w_k N(0, c_k I_d)`, at ``radii``.

    :math:`f_t` commutes with rotations (the recursion does, and :math:`f_1 = \mathrm{id}` does), so it is
    radial. Given :math:`X_t = r u`, component k has posterior :math:`N(m_k u, S_k I)`,
    :math:`S_k = (1/c_k + \alpha^2/\sigma^2)^{-1}`, :math:`m_k = S_k\alpha r/\sigma^2`: write
    :math:`X_0 = \rho u + W`, :math:`\rho \sim N(m_k, S_k)`, :math:`|W|^2 \sim S_k\chi^2_{d-1}`, so
    :math:`w = a_t r u + b_t X_0` has :math:`|w|^2 = (a_t r + b_t\rho)^2 + b_t^2|W|^2` and, by the
    symmetry of W about u,

    .. math:: \phi_t(r) = \sum_k \pi_k(r)\, E\Big[\phi_{t-1}(|w|)\,\frac{a_t r + b_t\rho}{|w|}\Big],

    :math:`\pi_k(r)` the component's posterior weight: a 2-D quadrature per radius, Gauss-Hermite in
    :math:`\rho` (``nodes``) and Gauss-Legendre in the :math:`\chi^2_{d-1}` quantile (``chi_nodes``);
    :math:`\phi_{t-1}` by the cubic spline of :func:`ideal_ct_1d` (odd: in d = 1 the factor is the
    sign of :math:`a_t r + b_t\rho`, and the recursion is :func:`ideal_ct_1d`'s on the half-line).

    Parameters
    ----------
    target : GaussianMixture
        Zero means, isotropic covariances (:func:`cmtheory.laws.check_rotation_invariant`).
    schedule : DiscreteVP
    radii : array of shape (N,)
        Strictly increasing, >= 0; the recursion keeps every :math:`\phi_t` there (extended
        linearly beyond, like :func:`ideal_ct_1d`), so they should cover the radii of every
        :math:`X_t` (in high d a shell: :math:`f_t` switches between the scales within a
        fraction of a unit of radius, which the radii must resolve).
    nodes, chi_nodes : int
        Quadrature nodes.

    Returns
    -------
    ndarray of shape (N,)
    """
    check_rotation_invariant(target)
    if not isinstance(target, GaussianMixture):
        raise ValueError(f"target must be a GaussianMixture (a scale mixture), got {type(target).__name__}")
    r = np.asarray(radii, dtype=np.float64)
    if r.ndim != 1 or r.size < 2 or r[0] < 0 or np.any(np.diff(r) <= 0):
        raise ValueError("radii must be a strictly increasing 1-D array of radii >= 0")
    d, c = target.d, target.covs.numpy()
    xi, wq = np.polynomial.hermite_e.hermegauss(nodes)
    wq = wq / wq.sum()
    C, wc = _chi2_quadrature(d - 1, chi_nodes)
    x = torch.zeros(r.size, d, dtype=torch.float64)
    x[:, 0] = torch.from_numpy(r)
    phi = r.copy()  # f_1 = id
    for t in range(2, schedule.T + 1):
        alpha, sigma = schedule.channel(t)
        pi = target.responsibilities(x, alpha, sigma).numpy()  # (N, K)
        S = 1 / (1 / c + alpha**2 / sigma**2)  # (K,)
        a, b = ct_coefficients(schedule, t)
        A = a * r[:, None, None] + b * (S * alpha * r[:, None] / sigma**2)[:, :, None] + b * np.sqrt(S)[None, :, None] * xi  # (N, K, nodes)
        norm = np.sqrt(A[..., None] ** 2 + (b * b * S)[None, :, None, None] * C)  # (N, K, nodes, chi_nodes)
        ratio = np.where(norm > 0, A[..., None] / np.where(norm > 0, norm, 1.0), 0.0)
        phi = (pi * (((_spline(r, phi, norm) * ratio) @ wc) @ wq)).sum(1)
    return phi


def _error_values(consistency_error, x: np.ndarray, alpha, sigma) -> np.ndarray:
    """The error field on the 1-D points ``x`` as a float64 array."""
    return consistency_error(torch.from_numpy(x)[:, None], alpha, sigma)[:, 0].double().numpy()



def ideal_ct_error(target, schedule: DiscreteVP, grid_cells: int = 8000, order: int = 2, nodes: int = 24, max_grid_error: float = 0.1) -> Estimate:
    r"""W_order between the ideal one-step output :math:`f_T(X_T)`, :math:`X_T\sim N(0,I)`, and :math:`X_1`.

    Gaussian targets: closed form (Bures; W2 only; se 0). 1-D mixtures: the output law is the
    pushforward of N(0, 1) by the monotone :math:`f_T` on a grid, against the exact law of
    :math:`X_1` (:func:`cmtheory.metrics.w_grid`); the grid's own accuracy is the change from
    ``grid_cells // 2`` cells to ``grid_cells``, reported as ``se`` (a first-order error
    estimate), and a grid whose error exceeds ``max_grid_error`` times the value is refused.
    Product targets: :math:`\sqrt d` times the 1-D W2 (order 2 only). Isotropic scale mixtures
    in d > 1: the same through the radial laws (:func:`ideal_ct_radial`; the output radius is
    the pushforward of :math:`\chi_d` by the increasing :math:`\phi_T`, on the shell that holds
    every :math:`X_t`).
    """
    from cmtheory.targets import ProductMixture

    check_positive_int(grid_cells, "grid_cells", 16)
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order!r}")
    a1, s1 = schedule.channel(1)
    if isinstance(target, GaussianMixture) and target.K == 1:
        if order != 2:
            raise ValueError("the Gaussian closed form gives W2 (order=2)")
        A, c = ideal_ct_gaussian(target, schedule)
        mu, Sigma = _single_gaussian(target)
        eye = torch.eye(target.d, dtype=torch.float64)
        est = w2_gaussians(c.numpy(), (A @ A.T).numpy(), (a1 * mu).numpy(), (a1**2 * Sigma + s1**2 * eye).numpy())
        return Estimate(est.value, 0.0, 0, "ideal CT, gaussian closed form", extra={"T": schedule.T, "d": target.d})
    if isinstance(target, GaussianMixture) and target.d > 1 and target.kind == "isotropic" and bool((target.means == 0).all()):
        fine, lost = _ideal_ct_radial_w(target, schedule, grid_cells, order, nodes)
        coarse, _ = _ideal_ct_radial_w(target, schedule, grid_cells // 2, order, nodes)
        _check_grid_error(fine, coarse, grid_cells, order, max_grid_error)
        return Estimate(fine, abs(fine - coarse), grid_cells, f"ideal CT, radial quadrature W{order} (se: change from {grid_cells // 2} cells)", extra={"T": schedule.T, "d": target.d, "lost": lost})
    factor, d = (target.factor, target.d) if isinstance(target, ProductMixture) else (target, 1)
    if factor.d != 1:
        raise ValueError("ideal_ct_error handles Gaussian targets, 1-D mixtures, ProductMixture and isotropic scale mixtures")
    if d > 1 and order != 2:
        raise ValueError("for product targets only W2 tensorises (order=2)")
    fine, lost = _ideal_ct_grid_w(factor, schedule, grid_cells, order, nodes)
    coarse, _ = _ideal_ct_grid_w(factor, schedule, grid_cells // 2, order, nodes)
    _check_grid_error(fine, coarse, grid_cells, order, max_grid_error)
    return Estimate(math.sqrt(d) * fine, math.sqrt(d) * abs(fine - coarse), grid_cells, f"ideal CT, grid quadrature W{order} (se: change from {grid_cells // 2} cells)", extra={"T": schedule.T, "d": d, "lost": lost})


def _check_grid_error(fine: float, coarse: float, grid_cells: int, order: int, max_grid_error: float) -> None:
    if not abs(fine - coarse) <= max_grid_error * fine:
        raise ValueError(f"grid_cells={grid_cells} is too coarse for this target and schedule: W{order} is {fine:.3g} on {grid_cells} cells and {coarse:.3g} on {grid_cells // 2} (grid error above {max_grid_error:g} of the value); use more cells")


def _ideal_ct_radial_w(target: GaussianMixture, schedule: DiscreteVP, grid_cells: int, order: int, nodes: int) -> tuple[float, float]:
    r"""W_order of the ideal one-step output of a scale mixture against :math:`X_1`, through the radial
    laws (W_p between rotation-invariant laws is that of their radii, :mod:`cmtheory.laws.radial`):
    the output radius is :math:`\phi_T(R)`, :math:`R \sim \chi_d`, on the shell that holds every
    :math:`X_t` (variances between :math:`\min(c_k, 1)` and :math:`\max(c_k, 1)`: their
    :math:`\chi_d` quantiles :math:`10^{-13}` and :math:`1 - 10^{-13}`, widened by 1); and the mass lost off it."""
    d, c = target.d, target.covs.numpy()
    a1, s1 = schedule.channel(1)
    lo = max(0.0, math.sqrt(min(c.min(), 1.0)) * float(scipy.stats.chi.ppf(1e-13, d)) - 1.0)
    edges = uniform_grid(lo, math.sqrt(max(c.max(), 1.0)) * float(scipy.stats.chi.ppf(1 - 1e-13, d)) + 1.0, grid_cells)
    radii = np.linspace(lo, edges[-1], grid_cells // 4 + 1)
    phi = ideal_ct_radial(target, schedule, radii, nodes, nodes)
    if np.any(np.diff(phi) <= 0):
        raise ValueError("the ideal consistency function's radial profile is not increasing on the grid")
    out = pushforward_law(lambda y: _spline(radii, phi, y), lambda y: scipy.stats.chi.cdf(y, d), radii, edges)
    w = w_grid(out, radial_law(target, a1, s1, edges), order)
    return w.value, w.extra["lost"]


def _ideal_ct_grid_w(factor: GaussianMixture, schedule: DiscreteVP, grid_cells: int, order: int, nodes: int) -> tuple[float, float]:
    """W_order of the 1-D ideal one-step output against X_1 on one grid, and the mass lost off it."""
    a1, s1 = schedule.channel(1)
    spread = float(np.sqrt(factor.component_covariances()[:, 0, 0].max().item() + 1))
    L = float(factor.means.abs().max()) + 9 * spread
    edges = uniform_grid(-L, L, grid_cells)
    nodes_x = np.linspace(-L, L, grid_cells // 4 + 1)
    fT = ideal_ct_1d(factor, schedule, nodes_x, nodes)
    if np.any(np.diff(fT) <= 0):
        raise ValueError("the ideal consistency function is not increasing on the grid")

    def transition(y):
        vals = np.interp(y[:, 0].numpy(), nodes_x, fT)
        out = torch.from_numpy(vals)[:, None]
        return GaussianTransition(out, lambda z: 0 * z)

    out_law = propagate(normal_law(0.0, 1.0, edges), transition)
    w = w_grid(out_law, gmm_1d_law(factor, a1, s1, edges), order)
    return w.value, w.extra["lost"]


def ideal_ct_deviation(target: GaussianMixture, schedule: DiscreteVP, consistency_error, grid_cells: int = 8000, nodes: int = 24, quantiles: int = 20_000) -> Estimate:
    r"""How far per-step consistency errors move the one-step output of ideal consistency training.

    With :math:`f'_t = K_t f'_{t-1} + \delta_t` (module docstring) and the ideal :math:`f_t`, the value
    is :math:`W_2(f'_T\#N(0,1), f_T\#N(0,1))`, from the two quantile functions: the values of each
    map at the ``quantiles`` midpoint quantiles :math:`z_i = \Phi^{-1}((i + 1/2)/Q)` of N(0, 1),
    sorted (no monotonicity needed). Beside it, in ``extra``:

    * ``coupling``: :math:`\|f'_T - f_T\|_{L^2(N(0,1))} \ge W_2`, the same-input coupling;
    * ``sum_errors``: :math:`\sum_{t=2}^T\|\delta_t\|_{L^2(q_t)}`, each by quadrature against the
      exact density of :math:`q_t`; the contraction bound is ``coupling <= sum_errors`` (up to
      :math:`q_T \ne N(0, 1)`, a difference of order :math:`\sqrt{\bar\alpha_T}`).

    ``se`` is the change of the value from ``grid_cells // 2`` grid cells to ``grid_cells``.

    Parameters
    ----------
    target : GaussianMixture
        A 1-D mixture.
    schedule : DiscreteVP
        The chain.
    consistency_error : callable
        ``consistency_error(x, alpha, sigma) -> (N, 1)`` tensor, as in :func:`ideal_ct_1d`.
    grid_cells : int
        Cells of the grid; the maps are computed on ``grid_cells // 4 + 1`` nodes.
    nodes : int
        Gauss-Hermite nodes.
    quantiles : int
        Q, the quantile levels of N(0, 1) at which the maps are compared.

    Returns
    -------
    Estimate
    """
    check_positive_int(grid_cells, "grid_cells", 16)
    check_positive_int(quantiles, "quantiles", 2)
    if not callable(consistency_error):
        raise ValueError(f"consistency_error must be a callable (x, alpha, sigma) -> tensor, got {type(consistency_error).__name__}")
    if not isinstance(target, GaussianMixture) or target.d != 1:
        raise ValueError(f"target must be a 1-D GaussianMixture, got {type(target).__name__} with d={getattr(target, 'd', None)}")
    z = scipy.special.ndtri((np.arange(quantiles) + 0.5) / quantiles)
    fine = _deviation_on_grid(target, schedule, consistency_error, grid_cells, nodes, z)
    coarse = _deviation_on_grid(target, schedule, consistency_error, grid_cells // 2, nodes, z)
    extra = {"coupling": fine[1], "sum_errors": fine[2], "T": schedule.T}
    return Estimate(fine[0], abs(fine[0] - coarse[0]), grid_cells, f"ideal CT deviation, W2 of quantile functions at {quantiles} levels (se: change from {grid_cells // 2} cells)", extra=extra)


def _deviation_on_grid(target, schedule, consistency_error, grid_cells: int, nodes: int, z: np.ndarray) -> tuple[float, float, float]:
    """(W2, coupling L2, sum of per-step L2 errors) on one grid."""
    spread = float(np.sqrt(target.component_covariances()[:, 0, 0].max().item() + 1))
    L = float(target.means.abs().max()) + 9 * spread
    x = np.linspace(-L, L, grid_cells // 4 + 1)
    ideal = scipy.interpolate.CubicSpline(x, ideal_ct_1d(target, schedule, x, nodes))(z)
    perturbed = scipy.interpolate.CubicSpline(x, ideal_ct_1d(target, schedule, x, nodes, consistency_error))(z)
    w2 = math.sqrt(float(np.mean((np.sort(perturbed) - np.sort(ideal)) ** 2)))
    coupling = math.sqrt(float(np.mean((perturbed - ideal) ** 2)))
    xt = torch.from_numpy(x)[:, None]
    total = 0.0
    for t in range(2, schedule.T + 1):
        alpha, sigma = schedule.channel(t)
        q = target.log_prob(xt, alpha, sigma).exp().numpy()
        total += math.sqrt(float(np.trapezoid(_error_values(consistency_error, x, alpha, sigma) ** 2 * q, x)))
    return w2, coupling, total
