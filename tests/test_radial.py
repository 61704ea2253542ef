"""cmtheory.laws.radial: radial laws of rotation-invariant targets and of DDPM / ICML 2024 outputs on them,
against the 1-D engine, closed-form chi laws, Bures and Monte Carlo."""

import math

import numpy as np
import pytest
import scipy.special
import scipy.stats
import torch

from cmtheory.laws import (
    check_rotation_invariant,
    ddpm_transition,
    gaussian_law,
    propagate_radial,
    radial_cdf,
    radial_hvp,
    radial_law,
    radial_score,
    richardson_law,
    uniform_grid,
)
from cmtheory.metrics import tv_grid, w2_gaussians, w_grid
from cmtheory.processes import linear_schedule
from cmtheory.laws import GaussianTransition
from cmtheory.samplers import ddpm, exact_covariance, li_icml2024
from cmtheory.samplers import sampler_law_1d, sampler_law_radial
from cmtheory.targets import GaussianMixture, Sphere, Subspace


def scale_mixture(d, variances=(0.25, 1.0), weights=(0.5, 0.5)):
    return GaussianMixture(list(weights), torch.zeros(len(variances), d), list(variances))


@pytest.mark.parametrize("name", ["ddpm", "exact_covariance"])
def test_d1_radial_law_is_the_law_of_the_absolute_value_from_the_1d_engine(name):
    """d = 1: the mirrored A-step is the 1-D engine on [-hi, hi]; folding its law gives |Y| (to 1e-12:
    FFT round-off over 40 steps, measured 1e-13). The exact-covariance step's state-dependent noise
    goes through the same engine."""
    target, sch = scale_mixture(1), linear_schedule(40)
    radial = sampler_law_radial(name, target, sch, uniform_grid(0.0, 6.0, 300), start="normal")
    full = sampler_law_1d(name, target, sch, uniform_grid(-6.0, 6.0, 600), start="normal")
    folded = full.masses[300:] + full.masses[:300][::-1]
    np.testing.assert_allclose(radial.masses, folded, rtol=0, atol=1e-12)


def _chi_tv(d, v, c):
    r"""TV(N(0, vI_d), N(0, cI_d)) from chi-square CDFs: the densities cross once, at
    :math:`|x|^2 = d\,vc\ln(v/c)/(v-c)`."""
    r2 = d * v * c * math.log(v / c) / (v - c)
    return abs(scipy.special.gammainc(d / 2, r2 / (2 * v)) - scipy.special.gammainc(d / 2, r2 / (2 * c)))


@pytest.mark.parametrize("d, cells", [(2, 200), (64, 400), (1024, 800)])
def test_ddpm_on_an_isotropic_gaussian_is_the_affine_recursion_and_its_tv_the_chi_square_value(d, cells):
    """Target N(0, I/2): DDPM's output is N(0, vI) with v from the 1-D affine recursion. The radial law
    (Richardson, cells at most sqrt(beta_1) = 0.045 wide) matches sqrt(v) chi_d within 3e-4 in TV,
    and its TV to the target equals the closed form within that."""
    c, T = 0.5, 50
    sch = linear_schedule(T)
    one = GaussianMixture([1.0], torch.zeros(1, 1), [c])
    _, P = gaussian_law(torch.zeros(1), torch.eye(1, dtype=torch.float64), [lambda y, t=t: ddpm_transition(one.score, sch, t, y) for t in range(T, 0, -1)])
    v = float(P[0, 0])
    target = GaussianMixture([1.0], torch.zeros(1, d), [c])
    lo, hi = max(0.0, math.sqrt(c * d) - 7), math.sqrt(d) + 7
    law = richardson_law(lambda e: sampler_law_radial("ddpm", target, sch, e, start="normal"), lo, hi, cells)
    exact = radial_law(GaussianMixture([1.0], torch.zeros(1, d), [v]), 1.0, 0.0, law.edges)
    err = tv_grid(law, exact).value
    assert err < 3e-4 and err <= law.grid_error
    tv = tv_grid(law, radial_law(target, 1.0, 0.0, law.edges)).value
    assert tv == pytest.approx(_chi_tv(d, v, c), abs=err + 1e-9)


def test_grid_refinement_converges_at_second_order():
    """Two-scale mixture, d = 256 (radii near 8 and 16), T = 50: the unextrapolated law's distance to a 1600-cell
    Richardson reference falls ~4x per halving of h (h^2), and the Richardson law at 400 cells
    is within its reported grid_error (2.5e-3) of the reference (accuracy reached: 1.9e-4 in TV)."""
    target, sch = scale_mixture(256), linear_schedule(50)
    lo, hi = 2.0, 24.0
    ref = richardson_law(lambda e: sampler_law_radial("ddpm", target, sch, e, start="normal"), lo, hi, 1600)

    def coarsen(masses, k):
        return masses.reshape(-1, k).sum(1)

    errs = []
    for N in (200, 400, 800):
        law = sampler_law_radial("ddpm", target, sch, uniform_grid(lo, hi, N), start="normal")
        errs.append(0.5 * np.abs(law.masses - coarsen(ref.masses, 1600 // N)).sum())
    assert 3.0 < errs[0] / errs[1] < 5.0 and 3.0 < errs[1] / errs[2] < 5.0
    rich = richardson_law(lambda e: sampler_law_radial("ddpm", target, sch, e, start="normal"), lo, hi, 400)
    gap = 0.5 * np.abs(rich.masses - coarsen(ref.masses, 4)).sum()
    assert gap <= rich.grid_error and gap < 5e-4


def _pearson_p(radii, law, min_expected=20):
    """Pearson chi-square p-value of the radii's counts against the law's cell masses, cells merged
    until each expects >= min_expected draws."""
    n = radii.size
    cdf = np.concatenate([[0.0], np.cumsum(law.masses)])
    cuts, last = [0], 0
    for i in range(1, cdf.size):
        if (cdf[i] - cdf[last]) * n >= min_expected and (1 - cdf[i]) * n >= min_expected:
            cuts.append(i)
            last = i
    cuts.append(cdf.size - 1)
    edges = law.edges[cuts]
    expected = np.diff(cdf[cuts]) * n
    expected[0] += cdf[0] * n
    observed = np.histogram(radii, np.concatenate([[-np.inf], edges[1:-1], [np.inf]]))[0]
    return scipy.stats.chisquare(observed, expected * n / expected.sum()).pvalue


@pytest.mark.parametrize(
    "name, kind",
    [
        ("ddpm", "two_scale"),
        ("ddpm", "sphere"),
        ("li_icml2024", "two_scale"),
        ("exact_covariance", "two_scale"),
        pytest.param("li_icml2024", "sphere", marks=pytest.mark.slow),
        pytest.param("exact_covariance", "sphere", marks=pytest.mark.slow),
    ],
)
def test_monte_carlo_radii_in_d8_match_the_radial_law(name, kind):
    """d = 8, T = 30, n = 2e5 float64 draws of the registered sampler: the counts of |Y| in cells
    of the exact radial law (Richardson, 350 cells on [0, 7]) pass a Pearson chi-square test at 1e-3
    (the law's reported error, < 1e-3 in TV, is below the 1/sqrt(n) = 2.2e-3 sampling noise). The sphere runs to
    Y_1 (t_stop = 1), as its law is compared with X_1's."""
    d, T, n = 8, 30, 200_000
    sch = linear_schedule(T)
    target = scale_mixture(d) if kind == "two_scale" else Sphere(d, d, radius=math.sqrt(d))
    t_stop = 0 if kind == "two_scale" else 1
    law = richardson_law(lambda e: sampler_law_radial(name, target, sch, e, start="normal", t_stop=t_stop), 0.0, 7.0, 350)
    assert law.grid_error < 1e-3
    g = torch.Generator().manual_seed(3)
    y0 = torch.randn(n, d, generator=g, dtype=torch.float64)
    if name == "exact_covariance":
        y = exact_covariance(target.score, target.hvp, sch, y0, g, t_stop=t_stop)
    else:
        y = (ddpm if name == "ddpm" else li_icml2024)(target.score, sch, y0, g, t_stop=t_stop)
    assert _pearson_p(y.norm(dim=1).numpy(), law) > 1e-3


def test_radial_w2_between_isotropic_gaussians_is_bures():
    """W2(N(0, aI), N(0, bI)) = sqrt(d)|sqrt(a) - sqrt(b)| (Bures); the radial grid W2 on 4000 cells
    agrees within 1e-3 relative (quantile discretisation of the radial laws)."""
    d = 32
    edges = uniform_grid(0.0, 14.0, 4000)
    pa = radial_law(GaussianMixture([1.0], torch.zeros(1, d), [0.5]), 1.0, 0.0, edges)
    pb = radial_law(GaussianMixture([1.0], torch.zeros(1, d), [2.0]), 1.0, 0.0, edges)
    eye = np.eye(d)
    exact = w2_gaussians(np.zeros(d), 0.5 * eye, np.zeros(d), 2.0 * eye).value
    assert w_grid(pa, pb, 2).value == pytest.approx(exact, rel=1e-3)


def test_radial_cdf_of_the_noisy_sphere_matches_monte_carlo():
    """|alpha x + sigma z| for x uniform on the sphere of radius sqrt(d), d = 16: KS p-value > 1e-3 (n = 1e5)."""
    d, alpha, sigma = 16, 0.8, 0.6
    target = Sphere(d, d, radius=math.sqrt(d))
    g = torch.Generator().manual_seed(0)
    x = target.sample_noisy(100_000, alpha, sigma, generator=g)
    r = x.norm(dim=1).numpy()
    assert scipy.stats.kstest(r, lambda q: radial_cdf(target, alpha, sigma, q)).pvalue > 1e-3


@pytest.mark.parametrize("kind, d", [("two_scale", 5), ("sphere", 5), ("sphere", 1024)])
def test_radial_score_is_the_score_along_the_first_axis(kind, d):
    """The closed forms (scale mixture; the sphere's radial profile) against the target's own
    score in R^d (round-off, 1e-12 relative)."""
    target = scale_mixture(d) if kind == "two_scale" else Sphere(d, d, radius=math.sqrt(d))
    r = torch.linspace(0.1, 1.5, 7, dtype=torch.float64)[:, None] * math.sqrt(d)
    x = torch.zeros(7, d, dtype=torch.float64)
    x[:, 0] = r[:, 0]
    np.testing.assert_allclose(radial_score(target)(r, 0.7, 0.5), target.score(x, 0.7, 0.5)[:, :1], rtol=1e-12)


@pytest.mark.parametrize(
    "target, named",
    [
        (GaussianMixture([0.5, 0.5], [[1.0, 0.0], [-1.0, 0.0]], [1.0, 1.0]), "means of largest norm 1"),
        (GaussianMixture([1.0], [[0.0, 0.0]], [[1.0, 2.0]]), "diagonal covariances"),
        (Sphere(4, 3), "k=3 < d=4"),
        (Subspace(3, [1.0], [[0.0]], [1.0]), "a Subspace"),
    ],
)
def test_a_target_that_is_not_rotation_invariant_is_refused_by_name(target, named):
    with pytest.raises(ValueError, match="rotation-invariant") as info:
        check_rotation_invariant(target)
    assert named in str(info.value)
    with pytest.raises(ValueError, match="rotation-invariant"):
        sampler_law_radial("ddpm", target, linear_schedule(30), uniform_grid(0.0, 5.0, 50))


def _one_step_radial_cdf(law, m, s_r, s_t, d, at, nodes=16):
    r"""CDF at the radii ``at`` of :math:`|Y'|`, :math:`|Y'|^2 = (m(r) + s_r(r) Z_1)^2 + s_t(r)^2\chi^2_{d-1}`,
    r uniform within each cell of ``law``: Gauss-Legendre over each cell (``nodes`` points) and
    Gauss-Hermite over Z_1, with the exact chi-square CDF inside (independent of the FFT engine)."""
    x, w = np.polynomial.legendre.leggauss(nodes)
    r = law.edges[:-1, None] + 0.5 * law.h * (x + 1)  # (N, nodes)
    wr = law.masses[:, None] * 0.5 * w
    z, wz = np.polynomial.hermite_e.hermegauss(80)
    wz = wz / wz.sum()
    A2 = (m(r)[..., None] + s_r(r)[..., None] * z) ** 2  # (N, nodes, 80)
    t2 = s_t(r)[..., None] ** 2
    out = []
    for q in at:
        p = scipy.special.gammainc((d - 1) / 2, np.clip(q * q - A2, 0, None) / (2 * t2))
        out.append(float((wr[..., None] * wz * p).sum()))
    return np.array(out)


def test_one_step_with_strongly_state_dependent_noise_matches_quadrature():
    """d = 16, one step with mean 0.9 r, radial noise 0.2 + 0.1 tanh(r - 4) and tangential noise
    0.1 + 0.25 / (1 + e^{2(4 - r)}) (its tangential mean (d - 1) sigma^2 varies from 0.15 to 1.8, over
    259 runs): the CDF of the radial law at every tenth edge matches the direct quadrature within
    1e-4, the O(h^2) error on 600 cells of width 0.0167 (measured 9.3e-5, 2.4e-5 and 6.0e-6 at
    300, 600 and 1200 cells; one run at the mass-weighted tangential scale errs by 0.047)."""
    d = 16
    edges = uniform_grid(0.0, 10.0, 600)
    law = radial_law(scale_mixture(d, (0.5, 1.5)), 1.0, 0.3, edges)

    def s_r(r):
        return 0.2 + 0.1 * np.tanh(r - 4)

    def s_t(r):
        return 0.1 + 0.25 / (1 + np.exp(2 * (4 - r)))

    def transition(x):  # equivariant: radial scale along u = x/|x|, tangential across it
        r = x.norm(dim=1, keepdim=True)
        u = x / r
        a, b = torch.from_numpy(s_r(r.numpy())), torch.from_numpy(s_t(r.numpy()))
        return GaussianTransition(0.9 * x, lambda z: a * (u * z).sum(1, keepdim=True) * u + b * (z - (u * z).sum(1, keepdim=True) * u))

    out = propagate_radial(law, transition, d)
    cdf = np.cumsum(out.masses)[9::10]
    ref = _one_step_radial_cdf(law, lambda r: 0.9 * r, s_r, s_t, d, edges[10::10])
    assert np.abs(cdf - ref).max() < 1e-4


@pytest.mark.parametrize("kind, d, alpha, sigma", [("two_scale", 6, 0.8, 0.4), ("two_scale", 4096, 0.995, 0.1), ("sphere", 5, 0.9, 0.5), ("sphere", 1024, 0.995, 0.1)])
def test_radial_hvp_is_the_targets_hvp_on_the_first_two_axes(kind, d, alpha, sigma):
    """At r e_1, v = (1, 1): the target's own HVP in R^d (its first two coordinates) is
    (psi', psi/r). The closed forms (scale mixture H = -g I + Var(1/v) x x^T; the sphere's radial
    profile) agree within 1e-10
    of the largest |psi'| (in d = 4096 the posterior switches scale within ~0.02 in r, where
    |psi'| peaks near 2e3), including r = 0; and at points of the plane off the axis."""
    target = scale_mixture(d) if kind == "two_scale" else Sphere(d, d, radius=math.sqrt(d))
    s = math.sqrt(d)
    r = torch.cat([torch.zeros(1, dtype=torch.float64), torch.linspace(0.3 * s, 1.2 * s, 400, dtype=torch.float64)])[:, None]
    x = torch.cat([r, 0.3 * torch.rand_like(r)], 1)
    x[:200, 1] = 0.0
    v = torch.randn(x.shape, dtype=torch.float64)
    out = radial_hvp(target)(x, v, alpha, sigma)
    full_x, full_v = torch.zeros(r.shape[0], d, dtype=torch.float64), torch.zeros(r.shape[0], d, dtype=torch.float64)
    full_x[:, :2], full_v[:, :2] = x, v
    ref = target.hvp(full_x, full_v, alpha, sigma)[:, :2]
    assert float((out - ref).abs().max()) < 1e-10 * float(ref.abs().max())
    on_axis = torch.cat([r, torch.zeros_like(r)], 1)
    curv = radial_hvp(target)(on_axis, torch.ones_like(on_axis), alpha, sigma)
    psi = radial_score(target)(r, alpha, sigma)
    np.testing.assert_allclose(curv[1:, 1:], psi[1:] / r[1:], rtol=1e-10)


def test_bad_grids_and_arguments_are_refused():
    target, sch = scale_mixture(4), linear_schedule(30)
    score = radial_score(target)
    law = radial_law(target, 1.0, 0.0, uniform_grid(0.0, 6.0, 60))
    neg = type(law)(uniform_grid(-1.0, 6.0, 70), np.full(70, 1 / 70))
    with pytest.raises(ValueError, match="edges start at"):
        propagate_radial(neg, lambda r: ddpm_transition(score, sch, 5, r), 4)
    with pytest.raises(ValueError, match="start must be"):
        sampler_law_radial("ddpm", target, sch, law.edges, start="uniform")
    with pytest.raises(ValueError, match="t_stop"):
        sampler_law_radial("ddpm", target, sch, law.edges, t_stop=30)


def test_exact_covariance_chain_does_not_depend_on_the_run_width(monkeypatch):
    """d = 64, T = 200, 1024 cells: runs sixteen times narrower than a rho cell change the
    exact-covariance law by under 1e-4 in TV (measured 2.1e-5, against the law's own TV of 1.8e-3
    to the target). Each cell's excess tangential mean is carried by the run's mean map; with the
    run's mean alone the chain drifts (0.0058 instead of 0.0013, the bias this guards against)."""
    import cmtheory.laws.radial as R

    target, sch = scale_mixture(64, (0.5, 1.0)), linear_schedule(200)
    edges = uniform_grid(1.95, 14.1, 1024)
    wide = sampler_law_radial("exact_covariance", target, sch, edges, start="normal")
    runs = R._tangential_runs
    monkeypatch.setattr(R, "_tangential_runs", lambda S_c, S_e, masses, width: runs(S_c, S_e, masses, width / 16))
    narrow = sampler_law_radial("exact_covariance", target, sch, edges, start="normal")
    assert tv_grid(wide, narrow).value < 1e-4


@pytest.mark.parametrize("name", ["ddpm", "exact_covariance"])
def test_a_radius_grid_far_from_the_origin_loses_no_mass_to_the_mean_map(name):
    """The sphere of radius sqrt(d) in d = 4096, T = 50: the first step's mean map sends radius 64
    to about 49.6, far below a grid of 64 +- 6, and the tangential noise brings it back. On that
    grid the law loses no more mass than on the grid extended to the origin (before A had a grid
    of its own all of it was lost; what both lose, 6e-9 for the exact-covariance law, is the
    trimmed cells of at most 1e-15 each), and the two laws agree on the shared cells within 2e-5
    in TV: two O(h^2) discretisations whose rho grids differ (measured 7.5e-7 and 6.6e-6,
    against TVs to the target of 0.38 and 0.16)."""
    d, sch = 4096, linear_schedule(50)
    target = Sphere(d, d, radius=math.sqrt(d))
    fn = lambda target, sch, edges, t_stop: sampler_law_radial(name, target, sch, edges, start="normal", t_stop=t_stop)  # noqa: E731
    h = 0.02
    near = fn(target, sch, 58.0 + h * np.arange(601), t_stop=1)
    full = fn(target, sch, h * np.arange(2900 + 601), t_stop=1)
    assert near.lost <= 1.01 * full.lost + 1e-12 and full.lost < 1e-8
    assert 0.5 * np.abs(near.masses - full.masses[2900:]).sum() < 2e-5
