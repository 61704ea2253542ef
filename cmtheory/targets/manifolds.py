r"""Targets supported on k-dimensional linear subspaces of :math:`\mathbb{R}^d` (k <= d).

With an orthonormal basis :math:`U \in \mathbb{R}^{d\times k}` and :math:`X_0 = U Y_0`,
the noisy law splits into the k-dim noisy law of :math:`u = U^T x` and pure noise in the
orthogonal complement, :math:`x_\perp = x - U U^T x`:

.. math::
    \log q(x) = \log q^{(k)}(U^T x) - \frac{|x_\perp|^2}{2\sigma^2} - \frac{d-k}{2}\log(2\pi\sigma^2),
    \quad \nabla\log q = U s^{(k)}(U^T x) - x_\perp/\sigma^2,
    \quad E[X_0\mid x] = U\,E[Y_0 \mid U^T x].

``Subspace``: a Gaussian mixture on the subspace. ``Sphere``: the uniform law on the
(k-1)-sphere of radius r in the subspace, whose k-dim noisy law is

.. math::
    q^{(k)}(u) = (2\pi\sigma^2)^{-k/2} e^{-(\rho^2+\alpha^2r^2)/(2\sigma^2)}\,
                 \Gamma(\nu+1)(2/\kappa)^\nu I_\nu(\kappa),
    \qquad \rho = |u|,\ \kappa = \alpha r\rho/\sigma^2,\ \nu = k/2 - 1,

with score :math:`u\,[(\alpha r R_\nu(\kappa) - \rho)/(\sigma^2\rho)]`,
:math:`R_\nu = I_{\nu+1}/I_\nu`, and denoiser :math:`r R_\nu(\kappa)\,u/\rho`.
"""

from __future__ import annotations

import math

import torch

from cmtheory._checks import check_positive, check_positive_int
from cmtheory.special import bessel_ratio, log_sphere_mgf_scaled
from cmtheory.targets.base import Target, _randn
from cmtheory.targets.gaussian_mixture import GaussianMixture
from cmtheory.targets.radial_mixture import RadialMixture, _ratio_over_kappa, noisy_sphere_curvatures

__all__ = ["Embedded", "Subspace", "Sphere"]


def _check_basis(basis, d: int, k: int) -> torch.Tensor:
    if k > d:
        raise ValueError(f"k must be <= d, got k={k} > d={d}")
    if basis is None:
        return torch.eye(d, dtype=torch.float64)[:, :k]
    U = torch.as_tensor(basis, dtype=torch.float64)
    if U.shape != (d, k):
        raise ValueError(f"basis must have shape (d, k) = ({d}, {k}), got {tuple(U.shape)}")
    if not torch.allclose(U.T @ U, torch.eye(k, dtype=torch.float64), atol=1e-8):
        raise ValueError("basis must have orthonormal columns (U^T U = I within 1e-8)")
    return U


class Embedded(Target):
    r"""A k-dimensional target placed in :math:`\mathbb{R}^d` by an orthonormal basis.

    Parameters
    ----------
    inner : Target
        Law of :math:`Y_0` in :math:`\mathbb{R}^k`.
    d : int
        Ambient dimension (>= k).
    basis : array of shape (d, k), optional
        Orthonormal columns; default the first k coordinate axes.
    """

    def __init__(self, inner: Target, d: int, basis=None):
        self.d = check_positive_int(d, "d")
        self.k = inner.d
        self.inner = inner
        self.basis = _check_basis(basis, self.d, self.k)
        self.singular = inner.singular or self.k < self.d

    def _params(self):
        return {"U": self.basis}

    def _split(self, x):
        U = self._cast(x)["U"]
        u = x @ U
        return U, u, x - u @ U.T

    def _log_prob(self, x, a, s):
        _, u, perp = self._split(x)
        m = self.d - self.k
        noise = -0.5 * (perp * perp).sum(1) / s[:, 0] ** 2 - 0.5 * m * torch.log(2 * math.pi * s[:, 0] ** 2) if m else 0.0
        return self.inner._log_prob(u, a, s) + noise

    def _score(self, x, a, s):
        U, u, perp = self._split(x)
        return self.inner._score(u, a, s) @ U.T - perp / s**2

    def _denoiser(self, x, a, s):
        U, u, _ = self._split(x)
        return self.inner._denoiser(u, a, s) @ U.T

    def _hvp(self, x, v, a, s):
        U, u, _ = self._split(x)
        vu = v @ U
        return self.inner._hvp(u, vu, a, s) @ U.T - (v - vu @ U.T) / s**2

    def sample(self, n, generator=None, dtype=torch.float64, device=None):
        """Draw n samples of X0 = U Y0."""
        y = self.inner.sample(n, generator, dtype, device)
        return y @ self._cast(y)["U"].T


class Subspace(Embedded):
    r"""Gaussian mixture on a k-dim linear subspace of :math:`\mathbb{R}^d` (singular at sigma = 0 when k < d).

    Parameters
    ----------
    d : int
        Ambient dimension.
    weights, means, covs
        The mixture in subspace coordinates (means of shape (K, k)); see :class:`GaussianMixture`.
    basis : array of shape (d, k), optional
        Orthonormal basis of the subspace; default the first k axes.
    """

    def __init__(self, d, weights, means, covs, basis=None):
        super().__init__(GaussianMixture(weights, means, covs), d, basis)


class _UniformSphere(Target):
    """Uniform law on the (k-1)-sphere of radius r in R^k (the inner law of Sphere)."""

    singular = True

    def __init__(self, k: int, radius: float):
        self.d = check_positive_int(k, "k")
        self.radius = check_positive(radius, "radius")
        self.nu = k / 2 - 1

    def _params(self):
        return {}

    def _polar(self, x, a, s):
        rho = x.norm(dim=1, keepdim=True)
        ar_s2 = a * self.radius / s**2
        return rho, ar_s2, ar_s2 * rho  # rho, alpha r / sigma^2, kappa

    def _radial(self, x, a, s):
        r"""g = phi'(rho)/rho, the score coefficient (score = g x), and phi''(rho) (:func:`noisy_sphere_curvatures`);
        also rho, alpha r / sigma^2 and kappa."""
        rho, ar_s2, kappa = self._polar(x, a, s)
        g, phi2 = noisy_sphere_curvatures(self.nu, a * self.radius, s**2, rho)
        return g, phi2, rho, ar_s2, kappa

    def _log_prob(self, x, a, s):
        rho, _, kappa = self._polar(x, a, s)
        k = self.d
        out = -0.5 * k * torch.log(2 * math.pi * s**2) - (rho - a * self.radius) ** 2 / (2 * s**2)
        return (out + log_sphere_mgf_scaled(self.nu, kappa))[:, 0]

    def _score(self, x, a, s):
        return self._radial(x, a, s)[0] * x

    def _denoiser(self, x, a, s):
        _, ar_s2, kappa = self._polar(x, a, s)
        return self.radius * ar_s2 * _ratio_over_kappa(self.nu, kappa, bessel_ratio(self.nu, kappa)) * x

    def _hvp(self, x, v, a, s):
        r"""Radial log-density :math:`\phi(\rho)`: :math:`H v = g\,(v - \hat x(\hat x\cdot v)) + \phi''\hat x(\hat x\cdot v)`
        (:meth:`_radial`)."""
        g, phi2, rho, _, _ = self._radial(x, a, s)
        xhat = torch.where(rho > 0, x / torch.where(rho > 0, rho, torch.ones_like(rho)), torch.zeros_like(x))
        proj = (xhat * v).sum(1, keepdim=True)
        return g * (v - xhat * proj) + phi2 * xhat * proj

    def sample(self, n, generator=None, dtype=torch.float64, device=None):
        """r z / |z| with z ~ N(0, I_k)."""
        check_positive_int(n, "n")
        z = _randn((n, self.d), generator, dtype, device)
        return self.radius * z / z.norm(dim=1, keepdim=True)


class Sphere(Embedded):
    r"""Uniform law on the (k-1)-sphere of radius r inside a k-dim subspace of :math:`\mathbb{R}^d`.

    Parameters
    ----------
    d : int
        Ambient dimension.
    k : int
        Dimension of the subspace holding the sphere (intrinsic dimension k - 1), 1 <= k <= d.
    radius : float
        r > 0.
    basis : array of shape (d, k), optional
        Orthonormal basis of the subspace; default the first k axes.
    """

    def __init__(self, d, k, radius=1.0, basis=None):
        check_positive_int(d, "d")
        check_positive_int(k, "k")
        if k > d:
            raise ValueError(f"k must be <= d, got k={k} > d={d}")
        super().__init__(_UniformSphere(k, radius), d, basis)
        self.radius = self.inner.radius
        self._profile = RadialMixture(k, [1.0], [self.radius], [0.0])  # the sphere in its subspace

    def radial_profile(self, r, alpha, sigma) -> tuple[torch.Tensor, torch.Tensor]:
        r"""The sphere's noisy log-density as a function of the radius :math:`\rho = |U^T x|` in its
        subspace: :math:`(\psi(\rho), \psi'(\rho))` with :math:`\psi = \phi'`, the score's component
        along :math:`u/\rho`, and :math:`\psi' = \phi''`, the Hessian's along it (the Hessian across
        it is :math:`\psi/\rho`; both in the class docstring's closed form). At :math:`\rho = 0`,
        :math:`\psi = 0` and :math:`\psi'` is the limit of :math:`\psi/\rho` (the Hessian is
        isotropic there). O(len(r)) work in any d: the exact radial laws of
        :mod:`cmtheory.laws.radial` call it instead of the score in :math:`\mathbb{R}^d`.

        Parameters
        ----------
        r : tensor of shape (n,)
            Radii >= 0.
        alpha, sigma : float or tensor of shape (n,)
            The channel; sigma > 0 (the law is singular at sigma = 0).

        Returns
        -------
        psi, dpsi : tensors of shape (n,)
        """
        return self._profile.radial_profile(r, alpha, sigma)

