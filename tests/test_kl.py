"""KL: Gaussian closed form, grid, and the path-KL bound against exact output laws."""

import math

import numpy as np
import pytest
import torch

from cmtheory.metrics import kl_gaussians, kl_grid, path_kl, tv_gaussians
from cmtheory.processes import linear_schedule
from cmtheory.laws import gaussian_law, normal_law, uniform_grid
from cmtheory.laws import ddpm_transition, exact_covariance_transition
from cmtheory.targets import GaussianMixture


def test_kl_gaussians_against_monte_carlo():
    m1, m2 = np.array([0.2, -0.1]), np.array([0.0, 0.3])
    C1, C2 = np.array([[1.0, 0.3], [0.3, 0.8]]), np.array([[1.5, 0.0], [0.0, 0.6]])
    rng = np.random.default_rng(0)
    import scipy.stats

    x = rng.multivariate_normal(m1, C1, 400_000)
    llr = scipy.stats.multivariate_normal(m1, C1).logpdf(x) - scipy.stats.multivariate_normal(m2, C2).logpdf(x)
    assert abs(llr.mean() - kl_gaussians(m1, C1, m2, C2).value) < 5 * llr.std() / math.sqrt(llr.size)


def test_kl_grid_matches_gaussian_closed_form():
    e = uniform_grid(-12, 12, 8000)
    assert kl_grid(normal_law(0, 1, e), normal_law(0.5, 1.5, e)).value == pytest.approx(
        kl_gaussians([0.0], [[1.0]], [0.5], [[2.25]]).value, abs=1e-5
    )


@pytest.mark.parametrize("which", ["ddpm", "exact_covariance"])
def test_path_kl_bounds_the_exact_output_divergence(which):
    """Gaussian target, T = 30: the path KL (Monte Carlo) is >= the exact output KL (affine
    recursion) up to 3 standard errors, and sqrt(KL/2) bounds the exact output TV."""
    target = GaussianMixture([1.0], [[0.5, -0.3]], [[[0.6, 0.2], [0.2, 0.4]]])
    sched = linear_schedule(30)
    if which == "ddpm":
        tr = lambda t, y: ddpm_transition(target.score, sched, t, y)  # noqa: E731
    else:
        tr = lambda t, y: exact_covariance_transition(target.score, target.hvp, sched, t, y)  # noqa: E731
    m, P = gaussian_law(torch.zeros(2), torch.eye(2), [lambda y, t=t: tr(t, y) for t in range(30, 0, -1)])
    out_kl = kl_gaussians(target.mean().numpy(), target.covariance().numpy(), m.numpy(), P.numpy()).value
    out_tv = tv_gaussians(target.mean().numpy(), target.covariance().numpy(), m.numpy(), P.numpy()).value
    est = path_kl(target, sched, tr, n=4000, generator=torch.Generator().manual_seed(0))
    assert est.value + 3 * est.se >= out_kl, (est, out_kl)
    assert est.extra["tv_upper"] >= out_tv


def test_path_kl_rejects_singular_targets():
    from cmtheory.targets import Sphere

    with pytest.raises(ValueError, match="density at sigma = 0"):
        path_kl(Sphere(2, 2), linear_schedule(30), None)
