"""Subspace and Sphere: support, closed-form densities against independent computations."""

import math

import pytest
import scipy.integrate
import torch

from cmtheory.targets import GaussianMixture, Sphere, Subspace


def test_sphere_samples_lie_on_the_sphere_in_the_subspace():
    basis = torch.linalg.qr(torch.randn(6, 3, dtype=torch.float64))[0]
    sph = Sphere(6, 3, 2.5, basis=basis)
    x = sph.sample(1000, torch.Generator().manual_seed(0))
    torch.testing.assert_close(x.norm(dim=1), torch.full((1000,), 2.5, dtype=torch.float64))
    torch.testing.assert_close(x - (x @ basis) @ basis.T, torch.zeros_like(x), atol=1e-12, rtol=0)


def test_sphere_samples_are_uniform():
    """Mean of a uniform direction is 0 and its second moment is I/k (5 standard errors)."""
    x = Sphere(3, 3, 1.0).sample(100_000, torch.Generator().manual_seed(1))
    assert (x.mean(0).abs() < 5 * (1 / 3 / 1e5) ** 0.5).all()
    torch.testing.assert_close(x.T @ x / 1e5, torch.eye(3, dtype=torch.float64) / 3, atol=0.01, rtol=0)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_sphere_density_against_quadrature(k):
    """q(x) = E_theta N(x; a r theta, s^2 I): for k = 2 and 3 the average over theta is a
    1-D integral over the angle to x, with density prop. to sin^(k-2)."""
    r, a, s = 1.3, 0.8, 0.5
    sph = Sphere(k, k, r)
    x = torch.tensor([[0.4] + [0.1] * (k - 1), [1.5] + [0.0] * (k - 1)], dtype=torch.float64)
    for xi, lp in zip(x, sph.log_prob(x, a, s)):
        rho = float(xi.norm())

        def integrand(phi):
            sq = rho**2 + (a * r) ** 2 - 2 * a * r * rho * math.cos(phi)
            return math.exp(-sq / (2 * s**2)) * math.sin(phi) ** (k - 2)

        num = scipy.integrate.quad(integrand, 0, math.pi, epsabs=0, epsrel=1e-12)[0]
        den = scipy.integrate.quad(lambda p: math.sin(p) ** (k - 2), 0, math.pi, epsabs=0, epsrel=1e-12)[0]
        ref = math.log(num / den) - k / 2 * math.log(2 * math.pi * s**2)
        assert abs(float(lp) - ref) < 1e-9


def test_sphere_k1_is_two_point_mixture():
    """The 0-sphere {-r, r}: q = (N(a r, s^2) + N(-a r, s^2)) / 2, denoiser r tanh(a r x / s^2)."""
    sph = Sphere(1, 1, 1.7)
    gmm = GaussianMixture([0.5, 0.5], [[1.7], [-1.7]], [1e-300, 1e-300])
    x = torch.linspace(-4, 4, 41, dtype=torch.float64)[:, None]
    torch.testing.assert_close(sph.log_prob(x, 0.9, 0.4), gmm.log_prob(x, 0.9, 0.4))
    torch.testing.assert_close(sph.denoiser(x, 0.9, 0.4), 1.7 * torch.tanh(0.9 * 1.7 * x / 0.16))


def test_sphere_denoiser_matches_monte_carlo():
    sph = Sphere(3, 3, 1.0)
    a, s = 0.9, 0.7
    x = torch.tensor([[0.5, -0.3, 0.2]], dtype=torch.float64)
    x0 = sph.sample(400_000, torch.Generator().manual_seed(3))
    w = torch.softmax(-((x - a * x0) ** 2).sum(1) / (2 * s**2), 0)
    est = (w[:, None] * x0).sum(0)
    se = torch.sqrt((w[:, None] * (x0 - est) ** 2).sum(0) * (w**2).sum())
    assert ((est - sph.denoiser(x, a, s)[0]).abs() < 5 * se).all()


def test_sphere_is_stable_for_huge_kappa_and_at_origin():
    sph = Sphere(4, 4, 1.0)
    x = torch.tensor([[1e3, 0, 0, 0], [0, 0, 0, 0], [1e-12, 0, 0, 0]], dtype=torch.float64)
    # kappa = a r |x| / s^2 up to 1e3 / 1e-10 = 1e13
    for s in (1e-5, 1e-4, 1.0):
        for out in (sph.log_prob(x, 1.0, s), sph.score(x, 1.0, s), sph.hvp(x, x, 1.0, s)):
            assert torch.isfinite(out).all()
    # At the origin the score vanishes by symmetry; near the sphere, far from it, it points inward
    sc = sph.score(torch.tensor([[0.0, 0, 0, 0], [1e3, 0, 0, 0]], dtype=torch.float64), 1.0, 1e-4)
    assert float(sc[0].abs().max()) == 0.0 and float(sc[1, 0]) < 0
    # For kappa -> inf the score tends to -(rho - a r)/s^2 - (nu + 1/2)/rho along x
    x = torch.tensor([[2.0, 0, 0, 0]], dtype=torch.float64)
    expected = -(2.0 - 1.0) / 1e-4**2 - 1.5 / 2.0
    assert abs(float(sph.score(x, 1.0, 1e-4)[0, 0]) - expected) < 1e-6 * abs(expected)


def test_subspace_matches_gaussian_mixture_with_tiny_normal_variance():
    """Against a full-dimensional mixture whose covariance is sigma_perp^2 off the subspace: as
    sigma_perp -> 0 its noisy law tends to the subspace target's (checked at sigma_perp^2 = 1e-10, which moves the noisy law by ~1e-10 relative)."""
    basis = torch.linalg.qr(torch.randn(4, 2, dtype=torch.float64))[0]
    means, covs = torch.tensor([[1.0, 0.0], [-0.5, 1.0]], dtype=torch.float64), [0.3, 0.6]
    sub = Subspace(4, [0.4, 0.6], means, covs, basis=basis)
    P = basis @ basis.T
    full_covs = torch.stack([c * P + 1e-10 * (torch.eye(4) - P) for c in covs])
    full = GaussianMixture([0.4, 0.6], means @ basis.T, 0.5 * (full_covs + full_covs.transpose(1, 2)))
    x = torch.randn(10, 4, dtype=torch.float64)
    for m in ("log_prob", "score", "denoiser"):
        torch.testing.assert_close(getattr(sub, m)(x, 0.8, 0.5), getattr(full, m)(x, 0.8, 0.5), rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize(
    "build,match",
    [
        (lambda: Sphere(2, 3), "k must be <= d"),
        (lambda: Sphere(3, 2, radius=0.0), "radius must be a finite number > 0"),
        (lambda: Sphere(3, 2, radius=-1.0), "radius must be a finite number > 0"),
        (lambda: Sphere(3, 2, basis=torch.ones(3, 2)), "orthonormal"),
        (lambda: Sphere(3, 2, basis=torch.eye(3)), "basis must have shape"),
        (lambda: Subspace(2, [1.0], [[0.0, 0.0, 0.0]], [1.0]), "k must be <= d"),
    ],
)
def test_invalid_parameters_raise(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize("k, alpha, sigma", [(1, 0.9, 0.5), (7, 0.8, 0.4), (4096, 0.995, 0.1)])
def test_sphere_radial_profile_is_the_derivatives_of_the_log_density_along_a_ray(k, alpha, sigma):
    """psi and psi' against central differences of log_prob at rho e_1 in the subspace (an
    independent path: the log-density's Bessel form), steps h = sigma / 100 and h / 2 with
    Richardson extrapolation (truncation O(h^4)). Tolerance 1e-7 of the largest value plus the
    differences' round-off, eps |log q| / h and 4 eps |log q| / h^2 at h / 2, doubled for the
    extrapolation's weights (in k = 4096 |log q| reaches 7e4, and the second difference keeps
    ~3e-6 of psi'). At rho = 0, psi = 0 and psi' is the limit of psi/rho."""
    target = Sphere(k + 2, k, radius=math.sqrt(k))
    rho = torch.linspace(0.05, 1.6, 40, dtype=torch.float64) * math.sqrt(k)
    psi, dpsi = target.radial_profile(rho, alpha, sigma)

    def log_q(r):
        x = torch.zeros(r.numel(), k + 2, dtype=torch.float64)
        x[:, 0] = r
        return target.log_prob(x, alpha, sigma)

    def differences(h):
        lo, mid, hi = log_q(rho - h), log_q(rho), log_q(rho + h)
        return (hi - lo) / (2 * h), (hi - 2 * mid + lo) / h**2

    h = sigma / 200
    (a1, a2), (b1, b2) = differences(2 * h), differences(h)
    ref1, ref2 = (4 * b1 - a1) / 3, (4 * b2 - a2) / 3
    big = float(torch.finfo(torch.float64).eps * log_q(torch.cat([rho - 2 * h, rho + 2 * h])).abs().max())
    assert float((psi - ref1).abs().max()) < 1e-7 * float(ref1.abs().max()) + 2 * big / h
    assert float((dpsi - ref2).abs().max()) < 1e-7 * float(ref2.abs().max()) + 8 * big / h**2
    p0, dp0 = target.radial_profile(torch.tensor([0.0, 1e-9], dtype=torch.float64), alpha, sigma)
    assert float(p0[0]) == 0.0 and abs(float(dp0[0]) - float(p0[1]) / 1e-9) < 1e-6 * abs(float(dp0[0]))


@pytest.mark.parametrize("r, alpha, sigma, match", [(torch.tensor([-1.0], dtype=torch.float64), 1.0, 0.5, "radii >= 0"), (torch.ones(2, 1, dtype=torch.float64), 1.0, 0.5, "1-D floating"), (torch.ones(2, dtype=torch.float64), 1.0, 0.0, "sigma must be > 0")])
def test_sphere_radial_profile_refuses_bad_input_by_name(r, alpha, sigma, match):
    with pytest.raises(ValueError, match=match):
        Sphere(3, 3).radial_profile(r, alpha, sigma)
