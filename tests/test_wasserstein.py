"""Wasserstein estimators against closed forms; floors and their rates."""

import importlib
import math

import numpy as np
import pytest
import scipy.special
import torch

from cmtheory.consistency.statistical import atoms_w1_1d
from cmtheory.metrics import (
    coupling_distance, sinkhorn_divergence, sliced_wasserstein, w1_radial, w1_to_cdf, w2_gaussians, w2_product, w_grid, wasserstein,
)

# the package re-exports the function wasserstein under the submodule's name
wasserstein_module = importlib.import_module("cmtheory.metrics.wasserstein")
from cmtheory.laws import gmm_1d_cdf, gmm_1d_law, normal_law, richardson_law, uniform_grid
from cmtheory.processes import linear_schedule
from cmtheory.samplers import SAMPLERS, sampler_law_radial
from cmtheory.targets import GaussianMixture, Sphere


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


def test_w1_to_cdf_equals_the_closed_form_w1_to_a_mixture():
    """1-D mixture, a sample of it stretched by 1.05 (so W1 is not at the floor): the quadrature
    against atoms_w1_1d's closed form (the same quantity: crossings by bisection, integrals of the
    mixture CDF exact). Tolerance 1e-6 relative, and the reported quadrature error bounds the
    actual one (measured: 2e-7 relative at n = 1000, the error estimate 3x the error)."""
    target = GaussianMixture([0.3, 0.7], [[-2.0], [1.0]], [0.25, 1.0])
    x = 1.05 * target.sample(1000, torch.Generator().manual_seed(1)).numpy()
    est = w1_to_cdf(x, lambda y: gmm_1d_cdf(target, 1.0, 0.0, y))
    exact = atoms_w1_1d(x, None, target).value
    assert est.value == pytest.approx(exact, rel=1e-6)
    assert abs(est.value - exact) <= est.extra["quadrature_error"]
    assert est.n == 1000 and est.floor_se == 0.0 and est.extra["range"][0] < x.min() < x.max() < est.extra["range"][1]
    assert est.value > est.floor + 2 * est.se  # 0.118 against 0.059 + 2 x 0.025


def test_binomial_mad_is_de_moivres_closed_form():
    """De Moivre's E|X - np| against the sum over k of |k - np| C(n, k) p^k (1-p)^(n-k), at p
    including 0, 1 and the kinks k/n; tolerance 1e-12 relative (log-space round-off)."""
    for n in (1, 2, 7, 50):
        p = np.concatenate([np.linspace(0, 1, 101), np.arange(n + 1) / n])
        k = np.arange(n + 1)[:, None]
        pmf = np.exp(scipy.special.gammaln(n + 1) - scipy.special.gammaln(k + 1) - scipy.special.gammaln(n - k + 1)) * p**k * (1 - p) ** (n - k)
        brute = (np.abs(k - n * p) * pmf).sum(0)
        np.testing.assert_allclose(wasserstein_module._binomial_mad(n, p), brute, rtol=1e-12, atol=1e-15)


def _w1_to_standard_normal(x):
    r"""Exact :math:`W_1` of each row's empirical law to N(0, 1), vectorised over rows:
    :math:`I(y) = \int_{-\infty}^y \Phi = y\Phi(y) + \varphi(y)`; between sorted points a < b with
    :math:`F_n = c`, :math:`\int_a^b |c - \Phi|` splits at :math:`y = \Phi^{-1}(c)` clipped to [a, b]."""
    x = np.sort(x, axis=1)
    n = x.shape[1]

    def I(y):
        return y * scipy.special.ndtr(y) + np.exp(-0.5 * y * y) / math.sqrt(2 * math.pi)

    c = np.arange(1, n) / n
    a, b = x[:, :-1], x[:, 1:]
    y = np.clip(scipy.special.ndtri(c), a, b)
    gaps = c * (y - a) - (I(y) - I(a)) + (I(b) - I(y)) - c * (b - y)
    return I(x[:, 0]) + gaps.sum(1) + I(x[:, -1]) - x[:, -1]


def test_floor_is_the_mean_w1_of_samples_of_the_reference():
    """N(0, 1), n = 50: the exact floor against the mean of W1(F_n, Phi) over 2000 independent
    samples (each W1 in closed form), within 3 Monte Carlo standard errors (the floor is exact up
    to a quadrature error of ~1e-7, far below the Monte Carlo se of 1.4e-3). The bootstrap se of
    10 samples against the spread of W1 over the 2000: within a factor 1.6 (measured: 1.2 at
    n = 50, 0.95 at n = 1000; the bootstrap of W1(F_n*, F) is not centred on W1(F_n, F))."""
    rng = _rng(3)
    w = _w1_to_standard_normal(rng.standard_normal((2000, 50)))
    ests = [w1_to_cdf(rng.standard_normal(50), scipy.special.ndtr, seed=i) for i in range(10)]
    est = ests[0]
    assert np.allclose([e.floor for e in ests], est.floor, rtol=1e-6)
    assert abs(w.mean() - est.floor) < 3 * w.std(ddof=1) / math.sqrt(w.size), (w.mean(), est.floor)
    assert est.floor_se == 0.0 and est.extra["floor_quadrature_error"] < 1e-6
    ratio = np.mean([e.se for e in ests]) / w.std(ddof=1)
    assert 1 / 1.6 < ratio < 1.6, ratio


def test_w1_radial_of_a_scaled_gaussian_is_the_scaled_mean_chi():
    """Radii of N(0, v I_8) against the radial law of N(0, I_8): both radii are scaled chi_8 laws,
    coupled monotonically by r -> sqrt(v) r, so W1 = |sqrt(v) - 1| E[chi_8],
    E[chi_8] = sqrt(2) Gamma(4.5) / Gamma(4). The estimate is within floor + 3 se of it (the
    empirical law's own distance to its law is about the floor; se its spread)."""
    v, n = 1.21, 20_000
    target = GaussianMixture([1.0], torch.zeros(1, 8), [1.0])
    x = math.sqrt(v) * _rng(4).standard_normal((n, 8))
    exact = abs(math.sqrt(v) - 1) * math.sqrt(2) * math.exp(math.lgamma(4.5) - math.lgamma(4.0))
    est = w1_radial(x, target)
    assert abs(est.value - exact) <= est.floor + 3 * est.se, (est, exact)
    assert est.extra["d"] == 8 and est.method.startswith("W1 of radii")


def test_w1_radial_to_a_sphere_at_sigma_zero_is_the_mean_distance_to_its_radius():
    """The uniform law on the sphere of radius 2 in R^3 at sigma = 0: a step radial CDF at
    alpha * 2, declared as a jump, so W1 of the radii to it is mean |r_i - 2 alpha| to round-off
    (1e-12 relative) and the floor is 0 (a sample of a point mass is the point mass). Without the
    jump declared, F is taken linear across the one piece that holds the jump, so the value errs by
    at most that piece's width, at most (max r - min r) / 8192 (the halved uniform sub-grid)."""
    x = _rng(5).standard_normal((2000, 3))
    r = np.linalg.norm(x, axis=1)
    est = w1_radial(x, Sphere(3, 3, radius=2.0), alpha=0.8)
    assert est.value == pytest.approx(np.abs(r - 1.6).mean(), rel=1e-12)
    assert est.floor == 0.0 and est.se > 0
    undeclared = w1_to_cdf(r, lambda t: (t >= 1.6).astype(np.float64))
    assert 0 < abs(undeclared.value - est.value) <= (r.max() - r.min()) / 8192


def test_ddpm_radii_match_the_exact_radial_law_and_not_the_target():
    """DDPM, T = 50, on the scale mixture 0.5 N(0, 0.5 I_8) + 0.5 N(0, I_8), from Y_T ~ N(0, I_8),
    n = 1e5 (1 s): the Monte Carlo W1 of the radii to the exact radial law of DDPM's output
    (Richardson, 180 cells on [0, 8], width 0.044 <= sqrt(0.1 / T); its grid error in W1, 2e-4
    against 360 cells, is well below se ~ 1.2e-3) is within floor +- 3 se, while to the target's
    radial law it is not: DDPM at T = 50 is 0.02 away in W1, measured 9-10 se above the floor over
    three seeds, asserted > 5 se."""
    target = GaussianMixture([0.5, 0.5], torch.zeros(2, 8), [0.5, 1.0])
    sched = linear_schedule(50)
    g = torch.Generator().manual_seed(0)
    y = torch.randn(100_000, 8, dtype=torch.float64, generator=g)
    x = SAMPLERS["ddpm"].run(target.score, sched, y, g)
    law = richardson_law(lambda e: sampler_law_radial("ddpm", target, sched, e, start="normal"), 0.0, 8.0, 180)
    exact = w1_to_cdf(x.norm(dim=1), law.cdf)
    to_target = w1_radial(x, target)
    print(f"\nexact law: value {exact.value:.6f} floor {exact.floor:.6f} se {exact.se:.6f}; "
          f"target: value {to_target.value:.6f} floor {to_target.floor:.6f} se {to_target.se:.6f}")
    assert abs(exact.value - exact.floor) <= 3 * exact.se
    assert exact.extra["cdf_defect"] < 1e-6
    assert to_target.value - to_target.floor > 5 * to_target.se


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: w1_to_cdf(np.zeros((10, 2)), scipy.special.ndtr), "points must have shape \\(n,\\) or \\(n, 1\\)"),
        (lambda: w1_to_cdf(np.zeros((2, 2, 2)), scipy.special.ndtr), "points must have shape"),
        (lambda: w1_to_cdf(np.zeros(0), scipy.special.ndtr), "points must hold at least 2"),
        (lambda: w1_to_cdf(np.array([0.0, np.nan]), scipy.special.ndtr), "points contains NaN"),
        (lambda: w1_to_cdf(np.zeros(10), 0.5), "cdf must be a callable"),
        (lambda: w1_to_cdf(np.zeros(10), lambda x: scipy.special.ndtr(x)[None]), "cdf must map"),
        (lambda: w1_to_cdf(np.zeros(10), lambda x: np.full_like(x, np.nan)), "cdf returned NaN"),
        (lambda: w1_to_cdf(np.zeros(10), lambda x: 1.5 * scipy.special.ndtr(x)), "cdf must return values in \\[0, 1\\]"),
        (lambda: w1_to_cdf(np.zeros(10), lambda x: np.where(np.abs(x) < 1, 0.8, 1.0) * scipy.special.ndtr(x)), "cdf must be non-decreasing"),
        (lambda: w1_to_cdf(np.zeros(10), normal_law(0.0, 1.0, uniform_grid(-1.0, 1.0, 10)).cdf), "cdf levels off at 0.6826"),
        (lambda: w1_to_cdf(np.zeros(10), lambda x: 0.5 + 0.5 * np.tanh(np.log1p(np.log1p(np.abs(x)))) * np.sign(x)), "cdf does not reach 0"),
        (lambda: w1_to_cdf(np.zeros(10), scipy.special.ndtr, n_boot=1), "n_boot must be an int >= 2"),
        (lambda: w1_to_cdf(np.zeros(10), scipy.special.ndtr, n_boot=2.5), "n_boot must be an int"),
        (lambda: w1_to_cdf(np.zeros(10), scipy.special.ndtr, jumps=[np.inf]), "jumps must be finite"),
        (lambda: w1_radial(np.zeros((10, 3)), GaussianMixture([1.0], np.zeros((1, 8)), [1.0])), "points must have shape \\(n, 8\\)"),
        (lambda: w1_radial(np.zeros((10, 8)), GaussianMixture([1.0], np.ones((1, 8)), [1.0])), "target must be rotation-invariant"),
        (lambda: w1_radial(np.zeros((10, 8)), GaussianMixture([1.0], np.zeros((1, 8)), [1.0]), alpha=0.0), "alpha must be"),
        (lambda: w1_radial(np.zeros((10, 8)), GaussianMixture([1.0], np.zeros((1, 8)), [1.0]), sigma=-1.0), "sigma must be"),
    ],
)
def test_w1_to_cdf_and_w1_radial_refusals_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
