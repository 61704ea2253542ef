r"""Mixtures of rotation-invariant components: Gaussians, spheres and Gaussian-smoothed spheres.

Component k is the uniform law on the sphere of radius :math:`r_k \ge 0` in :math:`\mathbb{R}^d`
smoothed by :math:`N(0, \tau_k^2 I_d)` (width :math:`\tau_k \ge 0`): :math:`X_0 = r_k\Theta + \tau_k Z'`.
With :math:`r_k = 0` it is the isotropic Gaussian :math:`N(0, \tau_k^2 I_d)`, with :math:`\tau_k = 0` the
sphere. Its noisy law :math:`\alpha X_0 + \sigma Z = \alpha r_k\Theta + s_k Z`,
:math:`s_k^2 = \sigma^2 + \alpha^2\tau_k^2`, is the sphere's at the channel :math:`(\alpha, s_k)`:

.. math::
    \log q_k(x) = -\frac d2\log(2\pi s_k^2) - \frac{(\rho - \alpha r_k)^2}{2 s_k^2}
                  + \log\big[\Gamma(\nu+1)(2/\kappa_k)^\nu I_\nu(\kappa_k)e^{-\kappa_k}\big],
    \quad \rho = |x|,\ \kappa_k = \alpha r_k\rho/s_k^2,\ \nu = d/2 - 1

(the last term is 0 at :math:`r_k = 0`). The mixture :math:`q = \sum_k w_k q_k` has the posterior
:math:`\pi_k \propto w_k q_k(x)`, the radial score :math:`\psi = \sum_k \pi_k\psi_k` (score
:math:`\psi\,x/\rho`), and the Hessian :math:`\psi'\,uu^\top + (\psi/\rho)(I - uu^\top)` with

.. math:: \psi/\rho = \sum_k \pi_k\,\psi_k/\rho, \qquad
          \psi' = \sum_k \pi_k\psi_k' + \sum_k \pi_k(\psi_k - \psi)^2,

each component's :math:`(\psi_k/\rho, \psi_k')` from :func:`noisy_sphere_curvatures`.
The radius :math:`|X|^2/s_k^2` of component k is noncentral :math:`\chi^2_d` with noncentrality
:math:`(\alpha r_k/s_k)^2` (:meth:`RadialMixture.radial_cdf`). Every quantity is O(K) per point
through the radius; the d-dimensional methods add the O(d) of :math:`|x|` and the products with x.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.special
import scipy.stats
import torch

from cmtheory._checks import check_channel, check_positive_int, real_array
from cmtheory.special import bessel_ratio_pair, log_sphere_mgf_scaled
from cmtheory.targets.base import Target, _randn
from cmtheory.targets.gaussian_mixture import _check_weights

__all__ = ["RadialMixture"]


def _ratio_over_kappa(nu: float, kappa: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    r""":math:`R_\nu(\kappa)/\kappa` from R, with its series :math:`(1 - \kappa^2/(4(\nu+1)(\nu+2)))/(2(\nu+1))` near 0."""
    small = kappa < 1e-3
    k_safe = torch.where(small, torch.ones_like(kappa), kappa)
    series = (1 - kappa**2 / (4 * (nu + 1) * (nu + 2))) / (2 * (nu + 1))
    return torch.where(small, series, R / k_safe)


def noisy_sphere_curvatures(nu: float, ar: torch.Tensor, s2: torch.Tensor, rho: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The radial log-density :math:`\phi(\rho)` of the noisy sphere :math:`\alpha r\,\Theta + \sigma Z`
    (:math:`\Theta` uniform on :math:`S^{k-1}`, :math:`\nu = k/2 - 1`): :math:`g = \phi'(\rho)/\rho` (the score
    is g x) and :math:`\phi''(\rho)`, elementwise over broadcast tensors ``ar`` :math:`= \alpha r \ge 0`,
    ``s2`` :math:`= \sigma^2 > 0` and ``rho`` :math:`\ge 0`, from one evaluation of
    :math:`(R_\nu, 1 - R_\nu)` at :math:`\kappa = \alpha r\rho/\sigma^2`:

    .. math:: \phi'' = -1/\sigma^2 + (\alpha r/\sigma^2)^2 R_\nu'(\kappa), \qquad
              R_\nu' = (1-R)(1+R) - (2\nu+1)R/\kappa \quad \text{(DLMF 10.29.2)}.

    For :math:`\kappa \ge 1`, :math:`g = (\alpha r - \rho - \alpha r(1 - R))/(\sigma^2\rho)`, without
    cancellation at large :math:`\kappa`; below, :math:`g = (\alpha r/\sigma^2)^2 R/\kappa - 1/\sigma^2`.
    With r = 0 both are :math:`-1/\sigma^2`, the Gaussian's.

    Parameters
    ----------
    nu : float
        Order k/2 - 1 >= -1/2.
    ar, s2, rho : tensors
        Broadcastable to one shape.

    Returns
    -------
    g, phi2 : tensors of the broadcast shape
    """
    ar_s2 = ar / s2
    kappa = ar_s2 * rho
    R, C = bessel_ratio_pair(nu, kappa)
    R_over_k = _ratio_over_kappa(nu, kappa, R)
    small = kappa < 1
    rho_safe = torch.where(small, torch.ones_like(rho), rho)
    large_form = (ar - rho_safe - ar * C) / (s2 * rho_safe)
    small_form = ar_s2**2 * R_over_k - 1 / s2
    phi2 = -1 / s2 + ar_s2**2 * (C * (2 - C) - (2 * nu + 1) * R_over_k)
    return torch.where(small, small_form, large_form), phi2


def _check_scales(values, name: str, K: int) -> torch.Tensor:
    a = real_array(values, name)
    if a.shape != (K,):
        raise ValueError(f"{name} must have shape (K,) = ({K},), one per weight, got {a.shape}")
    if not np.isfinite(a).all() or (a < 0).any():
        raise ValueError(f"{name} must be finite and >= 0, got {a.tolist()}")
    return torch.from_numpy(a.copy())


class RadialMixture(Target):
    r"""Mixture :math:`\sum_k w_k\,\mathrm{Unif}(r_k S^{d-1}) * N(0, \tau_k^2 I_d)` of rotation-invariant
    components (module docstring): Gaussians (radius 0), spheres (width 0) and smoothed spheres.

    Parameters
    ----------
    d : int
        Dimension.
    weights : array of shape (K,)
        Non-negative, summing to 1 (within 1e-6).
    radii : array of shape (K,)
        Sphere radii :math:`r_k \ge 0`.
    widths : array of shape (K,)
        Per-coordinate standard deviations :math:`\tau_k \ge 0` of the Gaussian smoothing; a
        component with radius and width both 0 (a point mass) is refused. The law is singular
        (no density at sigma = 0) when a width is 0.

    Raises
    ------
    ValueError
        Bad shapes, negative or non-finite radii or widths, a point-mass component.

    Examples
    --------
    >>> target = RadialMixture(64, [0.5, 0.5], radii=[0.0, 8.0], widths=[1.0, 0.5])
    >>> target.score(torch.zeros(2, 64), alpha=0.9, sigma=0.4).shape
    torch.Size([2, 64])
    """

    def __init__(self, d: int, weights, radii, widths):
        self.d = check_positive_int(d, "d")
        self.weights = _check_weights(weights)
        self.K = self.weights.numel()
        self.radii = _check_scales(radii, "radii", self.K)
        self.widths = _check_scales(widths, "widths", self.K)
        point = (self.radii == 0) & (self.widths == 0)
        if point.any():
            raise ValueError(f"radii and widths: component {int(point.nonzero()[0, 0])} has radius 0 and width 0 (a point mass at the origin); give it a width > 0")
        self.singular = bool((self.widths == 0).any())
        self.nu = self.d / 2 - 1

    def _params(self):
        return {"log_w": torch.log(self.weights), "radii": self.radii, "widths": self.widths}

    @property
    def second_moment(self) -> float:
        r""":math:`E|X_0|^2/d = \sum_k w_k (r_k^2/d + \tau_k^2)`, the second moment per coordinate."""
        return float((self.weights * (self.radii**2 / self.d + self.widths**2)).sum())

    # -- the radial profile ----------------------------------------------------------
    def _components(self, rho: torch.Tensor, a: torch.Tensor, s: torch.Tensor):
        r"""Per component at the radii ``rho`` (n, 1): :math:`\log w_k + \log q_k`, :math:`\psi_k/\rho`
        and :math:`\psi_k'`, shapes (n, K); the spherical terms only for the components with r_k > 0."""
        p = self._cast(rho)
        ar = a * p["radii"]
        s2 = s**2 + (a * p["widths"]) ** 2
        log_q = p["log_w"] - 0.5 * self.d * torch.log(2 * math.pi * s2) - (rho - ar) ** 2 / (2 * s2)
        g = (-1 / s2).expand_as(log_q).clone()
        phi2 = g.clone()
        on = (self.radii > 0).nonzero()[:, 0].to(rho.device)
        if on.numel():
            ar_on, s2_on = ar.expand_as(log_q)[:, on], s2.expand_as(log_q)[:, on]
            log_q[:, on] += log_sphere_mgf_scaled(self.nu, ar_on * rho / s2_on)
            g[:, on], phi2[:, on] = noisy_sphere_curvatures(self.nu, ar_on, s2_on, rho)
        return log_q, g, phi2

    def _radial(self, rho, a, s):
        r""":math:`\psi/\rho` and :math:`\psi'` at the radii ``rho`` (n, 1), each (n, 1)."""
        log_q, g_k, phi2_k = self._components(rho, a, s)
        pi = torch.softmax(log_q, 1)
        g = (pi * g_k).sum(1, keepdim=True)
        spread = (pi * ((g_k - g) * rho) ** 2).sum(1, keepdim=True)
        return g, (pi * phi2_k).sum(1, keepdim=True) + spread

    def radial_profile(self, r, alpha, sigma) -> tuple[torch.Tensor, torch.Tensor]:
        r"""The noisy log-density along a ray: :math:`(\psi(r), \psi'(r))`, the score's component
        along :math:`x/|x|` and the Hessian's (the Hessian across it is :math:`\psi/r`), at the radii r.

        Parameters
        ----------
        r : tensor of shape (n,)
            Radii >= 0.
        alpha, sigma : float or tensor of shape (n,)
            The channel; sigma > 0 when the law is singular (a width is 0).

        Returns
        -------
        psi, dpsi : tensors of shape (n,), r's dtype

        Raises
        ------
        ValueError
            r not a 1-D floating tensor of finite radii >= 0, or a bad channel.
        """
        r = torch.as_tensor(r)
        if r.ndim != 1 or not r.dtype.is_floating_point:
            raise ValueError(f"r must be a 1-D floating tensor of radii, got shape {tuple(r.shape)} and dtype {r.dtype}")
        if (r < 0).any() or not torch.isfinite(r).all():
            raise ValueError("r must hold finite radii >= 0")
        rho = r.double()[:, None]
        a, s = check_channel(alpha, sigma, rho, sigma_positive=self.singular)
        key = (float(a), float(s)) if a.numel() == 1 and s.numel() == 1 else None
        memo = self.__dict__.get("_profile_memo")
        if key is not None and memo is not None and memo[0] == key and memo[1].shape == rho.shape and torch.equal(memo[1], rho):
            g, phi2 = memo[2]
        else:
            g, phi2 = self._radial(rho, a, s)
            if key is not None:  # a sampler's step asks for the score and the HVP at the same radii
                self._profile_memo = (key, rho.clone(), (g, phi2))
        return (g * rho)[:, 0].to(r.dtype), phi2[:, 0].to(r.dtype)

    def radial_cdf(self, r, alpha: float, sigma: float) -> np.ndarray:
        r"""CDF of :math:`|X|`, :math:`X = \alpha X_0 + \sigma Z`, at the radii r:
        :math:`\sum_k w_k F_k(r)`, :math:`F_k(r) = P(\chi^2_d(\lambda_k) \le r^2/s_k^2)`,
        :math:`\lambda_k = (\alpha r_k/s_k)^2` (central, the regularised gamma function, when
        :math:`r_k = 0`; a step at :math:`\alpha r_k` when :math:`s_k = 0`).

        Parameters
        ----------
        r : array
            Radii.
        alpha, sigma : float
            The channel, alpha > 0, sigma >= 0.

        Returns
        -------
        ndarray of r's shape
        """
        alpha, sigma = float(alpha), float(sigma)
        if not (math.isfinite(alpha) and alpha > 0 and math.isfinite(sigma) and sigma >= 0):
            raise ValueError(f"alpha must be finite and > 0 and sigma finite and >= 0, got alpha={alpha!r}, sigma={sigma!r}")
        r = real_array(r, "r")
        out = np.zeros(r.shape)
        for w, rk, tk in zip(self.weights.tolist(), self.radii.tolist(), self.widths.tolist()):
            s2 = sigma**2 + (alpha * tk) ** 2
            if s2 == 0:
                out += w * (r >= alpha * rk)
            elif rk == 0:
                out += w * scipy.special.gammainc(self.d / 2, r**2 / (2 * s2))
            else:
                out += w * scipy.stats.ncx2.cdf(r**2 / s2, self.d, (alpha * rk) ** 2 / s2)
        return out

    # -- the Target interface ------------------------------------------------------------
    def _log_prob(self, x, a, s):
        return torch.logsumexp(self._components(x.norm(dim=1, keepdim=True), a, s)[0], 1)

    def _score(self, x, a, s):
        return self._radial(x.norm(dim=1, keepdim=True), a, s)[0] * x

    def _hvp(self, x, v, a, s):
        rho = x.norm(dim=1, keepdim=True)
        g, phi2 = self._radial(rho, a, s)
        u = torch.where(rho > 0, x / torch.where(rho > 0, rho, torch.ones_like(rho)), torch.zeros_like(x))
        along = (u * v).sum(1, keepdim=True) * u
        return g * (v - along) + phi2 * along

    def sample(self, n, generator=None, dtype=torch.float64, device=None):
        r"""Draw n samples :math:`r_k\,z/|z| + \tau_k Z'` with k ~ w, z and Z' standard normal."""
        check_positive_int(n, "n")
        device = device if device is not None else (generator.device if generator is not None else "cpu")
        k = torch.multinomial(self.weights.to(device), n, replacement=True, generator=generator)
        z = _randn((n, self.d), generator, dtype, device)
        direction = z / z.norm(dim=1, keepdim=True)
        noise = _randn((n, self.d), generator, dtype, device)
        return self.radii.to(dtype=dtype, device=device)[k, None] * direction + self.widths.to(dtype=dtype, device=device)[k, None] * noise
