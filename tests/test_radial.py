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
    ddpm_law_radial,
    ddpm_transition,
    exact_covariance_transition,
    gaussian_law,
    li_icml2024_law_radial,
    propagate_radial,
    radial_cdf,
    radial_law,
    radial_score,
    richardson_law,
    uniform_grid,
)
from cmtheory.metrics import tv_grid, w2_gaussians, w_grid
from cmtheory.processes import linear_schedule
from cmtheory.samplers import ddpm, li_icml2024
from cmtheory.samplers.exact_laws import ddpm_law_1d
from cmtheory.targets import GaussianMixture, Sphere, Subspace


def scale_mixture(d, variances=(0.25, 1.0), weights=(0.5, 0.5)):
    return GaussianMixture(list(weights), torch.zeros(len(variances), d), list(variances))


def test_d1_radial_law_is_the_law_of_the_absolute_value_from_the_1d_engine():
    """d = 1: the mirrored A-step is the 1-D engine on [-hi, hi]; folding its law gives |Y| (to 1e-12:
    FFT round-off over 40 steps, measured 1e-13)."""
    target, sch = scale_mixture(1), linear_schedule(40)
    radial = ddpm_law_radial(target, sch, uniform_grid(0.0, 6.0, 300))
    full = ddpm_law_1d(target.score, sch, uniform_grid(-6.0, 6.0, 600))
    folded = full.masses[300:] + full.masses[:300][::-1]
    np.testing.assert_allclose(radial.masses, folded, rtol=0, atol=1e-12)


def _chi_tv(d, v, c):
    r"""TV(N(0, vI_d), N(0, cI_d)) from chi-square CDFs: the densities cross once, at
    :math:`|x|^2 = d\,vc\ln(v/c)/(v-c)`."""
    r2 = d * v * c * math.log(v / c) / (v - c)
    return abs(scipy.special.gammainc(d / 2, r2 / (2 * v)) - scipy.special.gammainc(d / 2, r2 / (2 * c)))


@pytest.mark.parametrize("d, cells", [(2, 400), (64, 400), (1024, 800)])
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
    law = richardson_law(lambda e: ddpm_law_radial(target, sch, e), lo, hi, cells)
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
    ref = richardson_law(lambda e: ddpm_law_radial(target, sch, e), lo, hi, 1600)

    def coarsen(masses, k):
        return masses.reshape(-1, k).sum(1)

    errs = []
    for N in (200, 400, 800):
        law = ddpm_law_radial(target, sch, uniform_grid(lo, hi, N))
        errs.append(0.5 * np.abs(law.masses - coarsen(ref.masses, 1600 // N)).sum())
    assert 3.0 < errs[0] / errs[1] < 5.0 and 3.0 < errs[1] / errs[2] < 5.0
    rich = richardson_law(lambda e: ddpm_law_radial(target, sch, e), lo, hi, 400)
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
    [("ddpm", "two_scale"), ("ddpm", "sphere"), ("li_icml2024", "two_scale"), pytest.param("li_icml2024", "sphere", marks=pytest.mark.slow)],
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
    law_fn = ddpm_law_radial if name == "ddpm" else li_icml2024_law_radial
    law = richardson_law(lambda e: law_fn(target, sch, e, t_stop=t_stop), 0.0, 7.0, 350)
    assert law.grid_error < 1e-3
    sampler = ddpm if name == "ddpm" else li_icml2024
    g = torch.Generator().manual_seed(3)
    y = sampler(target.score, sch, torch.randn(n, d, generator=g, dtype=torch.float64), g, t_stop=t_stop)
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


def test_radial_score_is_the_score_along_the_first_axis():
    target = scale_mixture(5)
    r = torch.linspace(0.1, 4, 7, dtype=torch.float64)[:, None]
    x = torch.zeros(7, 5, dtype=torch.float64)
    x[:, 0] = r[:, 0]
    np.testing.assert_array_equal(radial_score(target)(r, 0.7, 0.5), target.score(x, 0.7, 0.5)[:, :1])


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
        ddpm_law_radial(target, linear_schedule(30), uniform_grid(0.0, 5.0, 50))


def test_state_dependent_noise_and_bad_grids_are_refused():
    target, sch = scale_mixture(4), linear_schedule(30)
    score = radial_score(target)
    law = radial_law(target, 1.0, 0.0, uniform_grid(0.0, 6.0, 60))
    with pytest.raises(ValueError, match="isotropic and constant"):
        propagate_radial(law, lambda r: exact_covariance_transition(score, lambda y, v, a, s: -y * v, sch, 5, r), 4)
    neg = type(law)(uniform_grid(-1.0, 6.0, 70), np.full(70, 1 / 70))
    with pytest.raises(ValueError, match="edges start at"):
        propagate_radial(neg, lambda r: ddpm_transition(score, sch, 5, r), 4)
    with pytest.raises(ValueError, match="start must be"):
        ddpm_law_radial(target, sch, law.edges, start="uniform")
    with pytest.raises(ValueError, match="t_stop"):
        ddpm_law_radial(target, sch, law.edges, t_stop=30)
