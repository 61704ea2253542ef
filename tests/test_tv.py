"""Total variation: closed forms, Gil-Pelaez, product laws, histogram and classifier."""

import math

import numpy as np
import pytest
import scipy.special
import scipy.stats
import torch

from cmtheory.metrics import product_divergences, tv_classifier, tv_gaussians, tv_grid, tv_histogram
from cmtheory.laws import gmm_1d_law, normal_law, uniform_grid
from cmtheory.targets import GaussianMixture


def test_tv_of_unit_shift():
    assert tv_gaussians([0.0], [[1.0]], [1.0], [[1.0]]).value == pytest.approx(2 * scipy.special.ndtr(0.5) - 1, abs=1e-12)


@pytest.mark.parametrize("m2,v2", [(-0.2, 2.0), (0.0, 1.5), (-0.5, 0.1)])
def test_gil_pelaez_equals_one_dimensional_closed_form(m2, v2):
    """Embedding both 1-D laws in 3-D with identical extra coordinates leaves TV unchanged:
    the multivariate (Gil-Pelaez) path against the 1-D crossing-point formula, to 1e-8."""
    one = tv_gaussians([0.3], [[1.0]], [m2], [[v2]]).value
    three = tv_gaussians([0.3, 0, 0], np.diag([1.0, 1.0, 2.0]), [m2, 0, 0], np.diag([v2, 1.0, 2.0])).value
    assert abs(one - three) < 1e-8


def test_one_dimensional_closed_form_against_quadrature():
    x = np.linspace(-30, 30, 600_001)
    p, q = scipy.stats.norm(0.3, 1.0).pdf(x), scipy.stats.norm(-0.2, math.sqrt(2.0)).pdf(x)
    quad = 0.5 * np.trapezoid(np.abs(p - q), x)
    assert tv_gaussians([0.3], [[1.0]], [-0.2], [[2.0]]).value == pytest.approx(quad, abs=1e-8)


def test_general_gaussians_against_monte_carlo():
    m1, m2 = np.array([0.1, 0.2, -0.3]), np.zeros(3)
    C1, C2 = np.array([[1, 0.2, 0], [0.2, 1.5, 0.1], [0, 0.1, 0.7]]), np.eye(3)
    rng = np.random.default_rng(0)
    x = rng.multivariate_normal(m1, C1, 400_000)
    llr = scipy.stats.multivariate_normal(m2, C2).logpdf(x) - scipy.stats.multivariate_normal(m1, C1).logpdf(x)
    vals = np.maximum(0, -np.expm1(llr))  # TV = E_P[(1 - q/p)_+]
    exact = tv_gaussians(m1, C1, m2, C2).value
    assert abs(vals.mean() - exact) < 5 * vals.std() / math.sqrt(vals.size)


def test_product_tv_against_direct_two_dimensional_sum():
    """d = 2: exact TV = 1/2 sum_ij |p_i p_j - q_i q_j|; the Monte Carlo LLR estimate lies within
    5 standard errors, the exact Hellinger/KL bounds bracket it."""
    e = uniform_grid(-6, 6, 400)
    p = gmm_1d_law(GaussianMixture([0.5, 0.5], [[-1.0], [1.0]], [0.3, 0.3]), 1.0, 0.0, e)
    q = normal_law(0.0, 1.2, e)
    pm, qm = p.masses / p.masses.sum(), q.masses / q.masses.sum()
    direct = 0.5 * np.abs(np.outer(pm, pm) - np.outer(qm, qm)).sum()
    out = product_divergences(p, q, 2, n_mc=100_000, generator=np.random.default_rng(1))
    assert abs(out["tv"].value - direct) < 5 * out["tv"].se
    lo, hi = out["tv_bounds"].ci
    assert lo <= direct <= hi
    pos = pm > 0
    assert out["kl"].value == pytest.approx(2 * float((pm[pos] * np.log(pm[pos] / qm[pos])).sum()))


def test_product_tv_grows_with_dimension_and_saturates():
    e = uniform_grid(-6, 6, 400)
    p, q = normal_law(0.0, 1.0, e), normal_law(0.05, 1.0, e)
    ests = [product_divergences(p, q, d, n_mc=4000)["tv"] for d in (1, 100, 10_000)]
    assert ests[0].value < ests[1].value < ests[2].value
    # d-fold shift by 0.05: exactly TV(N(0, I), N(0.05 1, I)) = 2 Phi(0.05 sqrt(d) / 2) - 1
    for d, est in zip((100, 10_000), ests[1:]):
        assert abs(est.value - (2 * scipy.special.ndtr(0.05 * math.sqrt(d) / 2) - 1)) < 5 * est.se + 1e-3


def test_grid_tv_and_error_propagation():
    e = uniform_grid(-8, 8, 2000)
    est = tv_grid(normal_law(0.0, 1.0, e), normal_law(1.0, 1.0, e))
    # cell masses are exact; binning loses O(h^2) of TV in the cell where the densities cross
    assert est.value == pytest.approx(2 * scipy.special.ndtr(0.5) - 1, abs=1e-5)
    assert est.value <= 2 * scipy.special.ndtr(0.5) - 1


def test_histogram_tv_detects_difference_and_reports_floor():
    gmm = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], [0.2, 0.2])
    g = torch.Generator().manual_seed(0)
    same = tv_histogram(gmm.sample(20_000, g), gmm, bins=30, bootstrap=50, generator=g)
    assert same.floor_dominated(z=3), same
    shifted = tv_histogram(gmm.sample(20_000, g) + torch.tensor([0.5, 0.0], dtype=torch.float64), gmm, bins=30, bootstrap=50, generator=g)
    assert not shifted.floor_dominated() and shifted.value > 0.2


def test_classifier_lower_bound():
    """N(0,1) vs N(1.5,1) in 2-D (shift along one axis): TV = 2 Phi(0.75) - 1 = 0.547; the
    held-out bound must not exceed it beyond noise, and must detect it."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4000, 2, generator=g, dtype=torch.float64)
    y = torch.randn(4000, 2, generator=g, dtype=torch.float64) + torch.tensor([1.5, 0.0], dtype=torch.float64)
    est = tv_classifier(x, y, generator=g, steps=200)
    true = 2 * scipy.special.ndtr(0.75) - 1
    assert est.ci[0] <= true and est.value > true - 4 * est.se


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: tv_gaussians([0.0], [[1.0]], [0.0], [[-1.0]]), "positive definite"),
        (lambda: tv_grid(normal_law(0, 1, uniform_grid(-5, 5, 10)), normal_law(0, 1, uniform_grid(-5, 5, 12))), "same grid"),
        (lambda: tv_histogram(torch.zeros(100, 3), GaussianMixture([1.0], [[0.0, 0, 0]], [1.0])), "d <= 2"),
        (lambda: tv_histogram(torch.zeros(5, 1), GaussianMixture([1.0], [[0.0]], [1.0])), "too few samples"),
        (lambda: tv_classifier(torch.zeros(100, 2), torch.zeros(100, 3)), "shapes"),
    ],
)
def test_invalid_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()
