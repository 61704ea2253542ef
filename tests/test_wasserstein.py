"""Wasserstein estimators against closed forms; floors and their rates."""

import importlib
import math

import numpy as np
import pytest

from cmtheory.metrics import (
    coupling_distance, sinkhorn_divergence, sliced_wasserstein, w2_gaussians, w2_product, w_grid, wasserstein,
)

# the package re-exports the function wasserstein under the submodule's name
wasserstein_module = importlib.import_module("cmtheory.metrics.wasserstein")
from cmtheory.laws import gmm_1d_law, normal_law, uniform_grid
from cmtheory.targets import GaussianMixture


def _rng(seed=0):
    return np.random.default_rng(seed)


def test_bures_against_commuting_closed_form():
    """Diagonal covariances commute: W2^2 = |dm|^2 + sum (sqrt(a_i) - sqrt(b_i))^2."""
    a, b = np.array([1.0, 2.0, 0.5]), np.array([0.3, 2.0, 4.0])
    m1, m2 = np.zeros(3), np.array([1.0, -1.0, 0.5])
    exact = math.sqrt(float((m1 - m2) @ (m1 - m2) + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()))
    assert w2_gaussians(m1, np.diag(a), m2, np.diag(b)).value == pytest.approx(exact, rel=1e-10)


def test_emd_on_gaussian_samples_matches_bures_within_ci():
    """2-D: 5 batches of 1000; the empirical W2's upward bias here is ~floor^2 / (2 W2) ~ 0.01,
    well inside 3 standard errors (~0.08)."""
    rng = _rng()
    m1, C1, m2, C2 = np.zeros(2), np.eye(2), np.array([2.0, 0.0]), np.diag([2.0, 0.5])
    est = wasserstein(rng.multivariate_normal(m1, C1, 5000), rng.multivariate_normal(m2, C2, 5000))
    exact = w2_gaussians(m1, C1, m2, C2).value
    assert abs(est.value - exact) < 3 * est.se, (est, exact)


def test_sliced_and_sinkhorn_bracket_and_track_w2():
    """Sliced SW2 <= W2 (a projection is a contraction); the debiased Sinkhorn estimate is within
    5% of the exact emd value on the same batches at reg = 0.5 (cost scale ~8)."""
    rng = _rng(1)
    x = rng.multivariate_normal(np.zeros(2), np.eye(2), 900)
    y = rng.multivariate_normal([2.0, 0.0], np.diag([2.0, 0.5]), 900)
    emd = wasserstein(x, y, batches=3)
    sliced = wasserstein(x, y, method="sliced", batches=3)
    sink = wasserstein(x, y, method="sinkhorn", batches=3, reg=0.5)
    assert sliced.value < emd.value
    assert abs(sink.value - emd.value) < 0.05 * emd.value


def test_one_dimensional_uses_exact_quantile_coupling():
    x = np.arange(10.0)[:, None]
    est = wasserstein(x, x + 0.5, p=1, batches=2)
    assert est.value == pytest.approx(0.5) and est.se == pytest.approx(0.0)


def test_floor_decays_at_known_rate_in_one_dimension():
    """E W1 between two n-samples of N(0,1) ~ n^(-1/2): fitted slope over n = 200..3200 within 0.15."""
    rng = _rng(2)
    ns = [200, 800, 3200]
    floors = []
    for n in ns:
        vals = [wasserstein(rng.standard_normal((4 * n, 1)), rng.standard_normal((4 * n, 1)), p=1, batches=4).value for _ in range(5)]
        floors.append(np.mean(vals))
    slope = np.polyfit(np.log(ns), np.log(floors), 1)[0]
    assert abs(slope + 0.5) < 0.15, (slope, floors)


def test_floor_dominated_detection_in_d64():
    rng = _rng(3)
    n, d = 1000, 64
    x = rng.standard_normal((n, d))
    near = wasserstein(x, rng.standard_normal((n, d)) + 0.01, reference=rng.standard_normal((n, d)) + 0.01)
    assert near.floor_dominated(), near
    far = wasserstein(x, rng.standard_normal((n, d)) + 1.0, reference=rng.standard_normal((n, d)) + 1.0)
    assert not far.floor_dominated(), far


def test_grid_w_against_gaussian_closed_form():
    """Two normal laws on a fine grid: W2 = sqrt(dm^2 + (s1 - s2)^2), W1 (equal scale) = |dm|;
    tolerance 1e-4, the piecewise-uniform discretisation at h = 6e-3."""
    e = uniform_grid(-10, 10, 4096)
    p, q = normal_law(0.0, 1.0, e), normal_law(0.5, 2.0, e)
    assert w_grid(p, q, 2).value == pytest.approx(math.sqrt(0.25 + 1.0), abs=1e-4)
    assert w_grid(p, normal_law(0.7, 1.0, e), 1).value == pytest.approx(0.7, abs=1e-4)


def test_product_w2_is_sqrt_d_times_1d():
    e = uniform_grid(-8, 8, 2048)
    p = gmm_1d_law(GaussianMixture([0.5, 0.5], [[-1.0], [1.0]], [0.2, 0.2]), 1.0, 0.0, e)
    q = normal_law(0.0, 1.0, e)
    assert w2_product(p, q, 16).value == pytest.approx(4 * w_grid(p, q, 2).value)


def test_coupling_distance_is_an_upper_bound():
    rng = _rng(4)
    x = rng.standard_normal((4000, 3))
    y = x + rng.standard_normal((4000, 3)) * 0.3  # a coupling that is not optimal
    coupled = coupling_distance(x, y)
    assert coupled.value == pytest.approx(0.3 * math.sqrt(3), rel=0.05)
    assert wasserstein(x, y).value <= coupled.value + 3 * coupled.se


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: wasserstein(np.zeros((10, 2)), np.zeros((10, 3))), "same shape"),
        (lambda: wasserstein(np.zeros((3, 2)), np.zeros((3, 2))), "too few samples"),
        (lambda: wasserstein(np.full((10, 2), np.nan), np.zeros((10, 2))), "NaN"),
        (lambda: wasserstein(np.zeros((10, 2)), np.zeros((10, 2)), method="x"), "method must be"),
        (lambda: wasserstein(np.zeros((10, 2)), np.zeros((10, 2)), method="sinkhorn", p=1), "p=2"),
        (lambda: w2_gaussians([0.0], [[1.0]], [0.0, 1.0], [[1.0]]), "means must have shape"),
        (lambda: coupling_distance(np.zeros((5, 2)), np.zeros((4, 2))), "paired"),
    ],
)
def test_invalid_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_w2_gaussians_equals_pots_bures_and_handles_singular_covariances():
    """Against ot.gaussian.bures_wasserstein_distance on random positive definite pairs (to
    1e-9 relative); a singular covariance whose eigendecomposition rounds slightly below 0
    gives a finite answer where POT's square root gives NaN."""
    import ot

    rng = np.random.default_rng(0)
    for d in (1, 2, 5, 20):
        A, B = rng.standard_normal((2, d, d))
        m1, m2 = rng.standard_normal((2, d))
        C1, C2 = A @ A.T + 0.1 * np.eye(d), B @ B.T + 0.01 * np.eye(d)
        ref = float(ot.gaussian.bures_wasserstein_distance(m1, m2, C1, C2))
        assert w2_gaussians(m1, C1, m2, C2).value == pytest.approx(ref, rel=1e-9)
    singular = np.array([[0.0, 6.5e-159], [6.5e-159, 0.0]])
    assert w2_gaussians([1.0, 0.0], singular, [0.0, 0.0], np.zeros((2, 2))).value == pytest.approx(1.0)
    v = rng.standard_normal(3)
    rank_one = np.outer(v, v)  # eigenvalues 0, 0, |v|^2 up to round-off
    assert w2_gaussians(np.zeros(3), rank_one, np.zeros(3), rank_one).value == pytest.approx(0.0, abs=1e-7)


def _entropic_ot(x, y, reg):
    """OT_eps = <P, M> + reg KL(P | a b) from POT's log-domain plan, converged to 1e-10 on the
    marginals: an independent solver of the problem GeomLoss anneals towards."""
    import ot

    M = ot.dist(x, y)
    w = np.full(x.shape[0], 1 / x.shape[0])
    P = np.asarray(ot.sinkhorn(w, w, M, reg, method="sinkhorn_log", stopThr=1e-10, numItermax=100_000))
    nz = P > 0
    return float((P * M).sum() + reg * (P[nz] * np.log(P[nz] / np.outer(w, w)[nz])).sum())


def test_sinkhorn_divergence_equals_converged_pot_solution():
    """GeomLoss's S_eps (blur = sqrt(reg/2), value x 2) against the debiased full objective from
    POT's converged plans, m = 200, reg = 1. GeomLoss stops after its annealing schedule:
    relative error measured 8e-4 at scaling 0.8 (m = 400), so the tolerance is 3e-3; at
    scaling 0.5 the error is ~3e-2, which this tolerance would reject."""
    rng = _rng(5)
    x, y = rng.standard_normal((200, 2)), rng.standard_normal((200, 2)) + 0.5
    ref = _entropic_ot(x, y, 1.0) - 0.5 * _entropic_ot(x, x, 1.0) - 0.5 * _entropic_ot(y, y, 1.0)
    assert sinkhorn_divergence(x, y, reg=1.0, scaling=0.8) == pytest.approx(ref, rel=3e-3)
    assert sinkhorn_divergence(x, y, reg=1.0, scaling=0.5) != pytest.approx(ref, rel=3e-3)


def test_sinkhorn_estimate_reports_its_settings():
    rng = _rng(6)
    est = wasserstein(rng.standard_normal((400, 2)), rng.standard_normal((400, 2)), method="sinkhorn", reg=0.5, scaling=0.7)
    assert est.extra["reg"] == 0.5 and est.extra["scaling"] == 0.7


def test_block_softmin_equals_geomloss_dense_softmin():
    """The row-block soft-C-transform against GeomLoss's dense one on the same cost |x - y|^2 / 2
    (its squared_distances), N = 70 rows (not a multiple of the block), float64: equal to 1e-12
    (the same sums, grouped differently), at a small and a large temperature."""
    import torch
    from geomloss._legacy.sinkhorn_samples import softmin_tensorized
    from geomloss._legacy.utils import squared_distances

    g = torch.Generator().manual_seed(0)
    x, y, h = torch.randn(1, 70, 3, generator=g, dtype=torch.float64), torch.randn(1, 50, 3, generator=g, dtype=torch.float64), torch.randn(1, 50, generator=g, dtype=torch.float64)
    for eps in (0.05, 4.0):
        dense = softmin_tensorized(eps, squared_distances(x, y) / 2, h)
        torch.testing.assert_close(wasserstein_module._softmin_blocks(eps, (x, y), h), dense, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("m, d, reg, scaling, shift", [(400, 2, 1.0, 0.8, 0.5), (300, 3, 0.05, 0.9, 2.0), (257, 4, 0.2, 0.7, 0.0)])
def test_sinkhorn_divergence_equals_geomloss_samplesloss(m, d, reg, scaling, shift):
    """The same loop as SamplesLoss("sinkhorn", p=2, blur=sqrt(reg/2), scaling) run in float64 by
    GeomLoss's dense backend: 2 x its value to 1e-6 relative (float32 round-off; measured <= 1.3e-7),
    with unequal sizes; the caller's autograd mode is left as it was."""
    import torch
    from geomloss import SamplesLoss

    rng = _rng(11)
    x, y = rng.standard_normal((m, d)), rng.standard_normal((m + 7, d)) + shift
    ref = 2 * float(SamplesLoss("sinkhorn", p=2, blur=math.sqrt(reg / 2), scaling=scaling, debias=True, backend="tensorized")(torch.tensor(x), torch.tensor(y)))
    with torch.no_grad():
        assert sinkhorn_divergence(x, y, reg=reg, scaling=scaling) == pytest.approx(ref, rel=1e-6)
        assert not torch.is_grad_enabled()


@pytest.mark.parametrize("p", [1, 2, 3.5])
def test_sliced_equals_pots_with_shared_projections(p):
    """Same directions, same 1-D exact W_p per direction: equal to round-off (1e-10)."""
    import ot

    rng = _rng(7)
    x, y = rng.standard_normal((1000, 5)), rng.standard_normal((1000, 5)) + 0.3
    theta = ot.sliced.get_random_projections(5, 50, seed=3)
    ref = float(ot.sliced_wasserstein_distance(x, y, projections=theta, p=p))
    assert sliced_wasserstein(x, y, p=p, projections=theta).value == pytest.approx(ref, abs=1e-10)


def test_sliced_se_covers_the_population_value():
    """N(0, I) against N(m, I) in d = 4: SW_2^2 = E (theta . m)^2 = |m|^2 / d. With n = 2e5 the
    sampling bias of the projected W_2^2 (~1e-4) is far below the projection SE (~0.02), so the
    value must be within 3 SE of sqrt(|m|^2 / d), and a chunk size of 1 projection changes nothing."""
    rng = _rng(8)
    m = np.array([1.0, -0.5, 0.0, 2.0])
    x, y = rng.standard_normal((200_000, 4)), rng.standard_normal((200_000, 4)) + m
    est = sliced_wasserstein(x, y, n_projections=64, seed=1)
    exact = math.sqrt(float(m @ m) / 4)
    assert abs(est.value - exact) < 3 * est.se, (est, exact)
    assert 0.005 < est.se < 0.1
    small = sliced_wasserstein(x[:1000], y[:1000], n_projections=8)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(wasserstein_module, "_SLICE_BYTES", 8 * 1000)
        assert sliced_wasserstein(x[:1000], y[:1000], n_projections=8).value == pytest.approx(small.value, rel=1e-12)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: sliced_wasserstein(np.zeros((10, 2)), np.zeros((10, 2)), projections=np.ones((3, 4))), "shape \\(d, L\\)"),
        (lambda: sliced_wasserstein(np.zeros((10, 2)), np.zeros((10, 2)), n_projections=1), "at least 2 projections"),
        (lambda: sliced_wasserstein(np.zeros((10, 2)), np.zeros((11, 2))), "same shape"),
        (lambda: sinkhorn_divergence(np.zeros((10, 2)), np.zeros((10, 2)), scaling=1.0), "scaling must be"),
        (lambda: sinkhorn_divergence(np.full((10, 2), 1e39), np.zeros((10, 2))), "float32 range"),
    ],
)
def test_invalid_sliced_and_sinkhorn_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()
