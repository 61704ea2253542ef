"""KL: Gaussian closed form, grid, and the path-KL bound against exact output laws."""

import math

import numpy as np
import pytest
import torch

from cmtheory.metrics import kl_gaussians, kl_grid, path_kl, tv_gaussians
from cmtheory.processes import linear_schedule
from cmtheory.laws import GridLaw, gaussian_law, normal_law, radial_law, uniform_grid
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


@pytest.mark.parametrize("d", [1, 16, 512])
def test_kl_of_radial_laws_is_the_kl_of_the_d_dimensional_gaussians(d):
    """N(0, I_d) against N(0, 1.1 I_d): KL of the radial laws (chi_d scaled) on a grid of 20000 cells
    equals d/2 (v1/v2 - 1 + log(v2/v1)) within 1e-6 relative (the grid's O(h^2) error is ~1e-8)."""
    lo = max(0.0, math.sqrt(d) - 12.0)
    e = uniform_grid(lo, math.sqrt(1.1 * d) + 14.0, 20_000)
    p, q = radial_law(GaussianMixture([1.0], torch.zeros(1, d), [1.0]), 1.0, 0.0, e), radial_law(GaussianMixture([1.0], torch.zeros(1, d), [1.1]), 1.0, 0.0, e)
    exact = kl_gaussians(np.zeros(d), np.eye(d), np.zeros(d), 1.1 * np.eye(d)).value
    assert kl_grid(p, q).value == pytest.approx(exact, rel=1e-6)


def test_kl_grid_merges_round_off_tails_and_refuses_real_gaps():
    """A Richardson-like law with -1e-16 masses in a tail where p holds 1e-15: finite, equal to the KL
    with those cells merged into their neighbour (computed by hand), merged mass reported; a q
    with no mass over 1e-3 of p's: inf."""
    e = uniform_grid(0.0, 1.0, 6)
    p = GridLaw(e, np.array([1e-15, 1e-15, 0.3, 0.4, 0.3 - 2e-15, 0.0]))
    q = GridLaw(e, np.array([-1e-16, 0.0, 0.35, 0.35, 0.3, 1e-16]))
    est = kl_grid(p, q)
    by_hand = (0.3 + 2e-15) * math.log((0.3 + 2e-15) / (0.35 - 1e-16)) + 0.4 * math.log(0.4 / 0.35) + (0.3 - 2e-15) * math.log((0.3 - 2e-15) / 0.3)
    assert est.value == pytest.approx(by_hand, rel=1e-12)
    assert est.extra == {"merged_cells": 2, "merged_mass": pytest.approx(2e-15)}
    gap = GridLaw(e, np.array([0.0, 1e-3, 0.3, 0.4, 0.299, 0.0]))
    assert kl_grid(gap, q).value == math.inf
    with pytest.raises(ValueError, match="tail must be in"):
        kl_grid(p, q, tail=1.0)
    with pytest.raises(ValueError, match="masses must be finite"):
        kl_grid(p, GridLaw(e, np.array([-1e-6, 0.0, 0.35, 0.35, 0.3, 1e-6])))


def test_kl_grid_se_bounds_the_change_from_the_grid_error():
    """The first-order se covers the KL change when q moves by its stated grid error (TV 1e-4)."""
    e = uniform_grid(-8, 8, 400)
    p, q = normal_law(0, 1, e), normal_law(0.2, 1.1, e)
    shift = normal_law(0.21, 1.1, e).masses
    eps = 0.5 * float(np.abs(shift - q.masses).sum())
    est = kl_grid(p, GridLaw(e, q.masses, grid_error=eps))
    assert abs(kl_grid(p, GridLaw(e, shift)).value - est.value) <= est.se


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
