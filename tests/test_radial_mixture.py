"""RadialMixture: against its components (Gaussian, sphere), autograd of its own log-density, and Monte Carlo."""

import math

import numpy as np
import pytest
import scipy.stats
import torch

from cmtheory.targets import GaussianMixture, RadialMixture, Sphere


def _points(d, n=6, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(n, d, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("d", [1, 3, 64])
def test_one_gaussian_component_is_the_isotropic_gaussian(d):
    """Radius 0, width tau: N(0, tau^2 I_d), the GaussianMixture's formulas (round-off: 1e-12 relative)."""
    mix, gm = RadialMixture(d, [1.0], [0.0], [0.7]), GaussianMixture([1.0], torch.zeros(1, d), [0.49])
    x, v = _points(d), _points(d, seed=1)
    for a, s in ((1.0, 0.0), (0.8, 0.6)):
        torch.testing.assert_close(mix.log_prob(x, a, s), gm.log_prob(x, a, s), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(mix.score(x, a, s), gm.score(x, a, s), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(mix.hvp(x, v, a, s), gm.hvp(x, v, a, s), rtol=1e-12, atol=1e-12)
        r = np.linspace(0.0, 3 * math.sqrt(d), 7)
        np.testing.assert_allclose(mix.radial_cdf(r, a, s), scipy.stats.chi.cdf(r / math.sqrt(a * a * 0.49 + s * s), d), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("d", [2, 5, 512])
def test_one_sphere_component_is_the_sphere(d):
    """Width 0: the Sphere with k = d (score, HVP, log-density, radial CDF; same formulas, 1e-12)."""
    rho = math.sqrt(d)
    mix, sp = RadialMixture(d, [1.0], [rho], [0.0]), Sphere(d, d, radius=rho)
    x, v = _points(d, scale=1.1), _points(d, seed=1)
    a, s = 0.9, 0.4
    torch.testing.assert_close(mix.log_prob(x, a, s), sp.log_prob(x, a, s), rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(mix.score(x, a, s), sp.score(x, a, s), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(mix.hvp(x, v, a, s), sp.hvp(x, v, a, s), rtol=1e-10, atol=1e-12)
    r = np.linspace(0.0, 2 * rho, 9)
    np.testing.assert_allclose(mix.radial_cdf(r, a, s), scipy.stats.ncx2.cdf(r**2 / s**2, d, (a * rho / s) ** 2), rtol=1e-12)
    psi, dpsi = mix.radial_profile(torch.linspace(0.1, 2 * rho, 5, dtype=torch.float64), a, s)
    psi_s, dpsi_s = sp.radial_profile(torch.linspace(0.1, 2 * rho, 5, dtype=torch.float64), a, s)
    torch.testing.assert_close(psi, psi_s)
    torch.testing.assert_close(dpsi, dpsi_s)


@pytest.mark.parametrize("d", [3, 512])
def test_mixture_score_and_hvp_are_autograd_of_its_log_density(d):
    """Three components (a Gaussian, a smoothed sphere, a sphere): score = grad log q, HVP = grad (score . v),
    by autograd; the tolerance 1e-8 relative is float64 round-off in log q of size d."""
    mix = RadialMixture(d, [0.2, 0.5, 0.3], [0.0, 0.8 * math.sqrt(d), 1.3 * math.sqrt(d)], [0.6, 0.3, 0.0])
    x, v = _points(d, scale=1.0), _points(d, seed=2)
    a, s = 0.85, 0.5
    xa = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(mix.log_prob(xa, a, s).sum(), xa)
    torch.testing.assert_close(mix.score(x, a, s), grad, rtol=1e-8, atol=1e-10)
    xa = x.clone().requires_grad_(True)
    (hv,) = torch.autograd.grad((mix.score(xa, a, s) * v).sum(), xa)
    torch.testing.assert_close(mix.hvp(x, v, a, s), hv, rtol=1e-8, atol=1e-10)


def test_smoothed_sphere_radius_against_monte_carlo():
    """A smoothed sphere's noisy radius (the sphere's law at s^2 = sigma^2 + alpha^2 tau^2) against 1e5
    draws of alpha X_0 + sigma Z: Kolmogorov-Smirnov p > 1e-3 (a wrong channel, tau or sigma
    alone, is rejected at p < 1e-10)."""
    d, a, s = 16, 0.9, 0.4
    mix = RadialMixture(d, [1.0], [3.0], [0.5])
    g = torch.Generator().manual_seed(0)
    x = mix.sample_noisy(100_000, a, s, generator=g)
    r = x.norm(dim=1).numpy()
    assert scipy.stats.kstest(r, lambda q: mix.radial_cdf(q, a, s)).pvalue > 1e-3
    wrong = RadialMixture(d, [1.0], [3.0], [0.0])
    assert scipy.stats.kstest(r, lambda q: wrong.radial_cdf(q, a, s)).pvalue < 1e-10


def test_second_moment_is_the_mean_square_per_coordinate():
    """E|X0|^2/d = sum w (r^2/d + tau^2), against 2e5 draws (4 standard errors)."""
    d = 8
    mix = RadialMixture(d, [0.3, 0.7], [2.0, 0.0], [0.5, 1.2])
    x = mix.sample(200_000, torch.Generator().manual_seed(1))
    sq = (x * x).sum(1) / d
    assert abs(float(sq.mean()) - mix.second_moment) < 4 * float(sq.std()) / math.sqrt(x.shape[0])
    assert mix.second_moment == pytest.approx(0.3 * (4 / 8 + 0.25) + 0.7 * 1.44)


def test_singular_only_with_a_sphere_component():
    assert RadialMixture(4, [1.0], [1.0], [0.0]).singular
    assert not RadialMixture(4, [0.5, 0.5], [1.0, 0.0], [0.1, 1.0]).singular
    with pytest.raises(ValueError, match="sigma must be > 0"):
        RadialMixture(4, [1.0], [1.0], [0.0]).score(torch.zeros(1, 4, dtype=torch.float64), 1.0, 0.0)


@pytest.mark.parametrize(
    "args, match",
    [
        ((4, [1.0], [0.0], [0.0]), "point mass"),
        ((4, [0.5, 0.5], [1.0], [1.0, 1.0]), "radii must have shape"),
        ((4, [1.0], [-1.0], [1.0]), "radii must be finite and >= 0"),
        ((4, [1.0], [1.0], [float("nan")]), "widths must be finite"),
        ((4, [0.5, 0.6], [1.0, 1.0], [1.0, 1.0]), "weights must sum to 1"),
        ((0, [1.0], [1.0], [1.0]), "d must be"),
    ],
)
def test_bad_parameters_are_refused_by_name(args, match):
    with pytest.raises(ValueError, match=match):
        RadialMixture(*args)


def test_radial_cdf_refuses_a_bad_channel():
    with pytest.raises(ValueError, match="alpha must be finite and > 0"):
        RadialMixture(2, [1.0], [0.0], [1.0]).radial_cdf(np.ones(2), float("nan"), 0.1)


def test_radial_profile_memo_never_returns_a_stale_value():
    """The profile is memoised for repeated radii and channel (a step's score and HVP); a caller that
    changes its radii in place, or the channel, gets the new values (against a fresh target)."""
    mix, fresh = (RadialMixture(8, [0.5, 0.5], [2.0, 0.0], [0.3, 1.0]) for _ in range(2))
    r = torch.linspace(0.1, 4.0, 9, dtype=torch.float64)
    mix.radial_profile(r, 0.9, 0.4)
    r.mul_(1.5)
    for alpha, sigma in ((0.9, 0.4), (0.8, 0.6)):
        got, want = mix.radial_profile(r, alpha, sigma), fresh.radial_profile(r, alpha, sigma)
        torch.testing.assert_close(got[0], want[0], rtol=0, atol=0)
        torch.testing.assert_close(got[1], want[1], rtol=0, atol=0)
