"""cmtheory.testing: the exact TV rate against the rates measured in test_exact_laws, and the pytest
plugin used the way a user's suite uses it (pytester runs a copied example test)."""

from importlib.metadata import entry_points

import numpy as np
import pytest

from cmtheory.targets import GaussianMixture
from cmtheory.testing import assert_rate, exact_tv_rate, mixture_span, sampler_rate

pytest_plugins = ["pytester"]

GMM = GaussianMixture([0.4, 0.6], [[-1.0], [1.0]], [0.25, 0.16])

USER_TEST = '''
import numpy as np
import torch
from cmtheory.testing import assert_rate


def test_ddpm_is_first_order(cmtheory_gmm_1d, cmtheory_exact_tv_rate):
    fit = cmtheory_exact_tv_rate("ddpm", cmtheory_gmm_1d, Ts=[50, 100, 200])
    assert_rate(fit, "T", -1.0, tol=0.05)


def test_seeded_fixtures(cmtheory_seed, cmtheory_generator, cmtheory_rng):
    assert torch.equal(torch.randn(3, generator=cmtheory_generator), torch.randn(3, generator=torch.Generator().manual_seed(cmtheory_seed)))
    assert np.array_equal(cmtheory_rng.normal(size=3), np.random.default_rng(cmtheory_seed).normal(size=3))


def test_gaussian_factory(cmtheory_gaussian):
    target = cmtheory_gaussian(3)
    assert target.d == 3 and target.sample(4, generator=torch.Generator().manual_seed(0)).shape == (4, 3)
'''


def test_plugin_is_registered_under_pytest11():
    assert "cmtheory.testing.plugin" in {e.value for e in entry_points(group="pytest11")}


def test_a_users_rate_test_passes_with_the_plugin_fixtures(pytester):
    pytester.makepyfile(test_user=USER_TEST)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=3)


def test_the_seed_option_reaches_the_fixtures(pytester):
    pytester.makepyfile(test_seed="def test_seed(cmtheory_seed):\n    assert cmtheory_seed == 7\n")
    pytester.runpytest("--cmtheory-seed", "7").assert_outcomes(passed=1)


def test_a_wrong_expected_rate_fails_with_the_fit_in_the_message(pytester):
    pytester.makepyfile(test_wrong=USER_TEST.replace('"T", -1.0, tol=0.05', '"T", -2.0, tol=0.05'))
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*rate of T: measured T: -1.0*", "*expected -2.000*"])


def test_exact_tv_rate_is_first_order_for_ddpm_and_reports_its_points():
    """DDPM's exact-law TV slope on this mixture is -1.00 (test_exact_laws: [-1.15, -0.85] over
    T = 50..400); the grid error is the SE, so the CI is narrow (width < 0.2)."""
    fit = exact_tv_rate("ddpm", GMM, [50, 100, 200])
    assert_rate(fit, "T", -1.0, tol=0.05)
    lo, hi = fit.ci["T"]
    assert hi - lo < 0.2 and len(fit.points) == 3


def test_mixture_span_covers_the_components_and_the_start():
    lo, hi = mixture_span(GMM)
    assert lo == -8.0 and hi == 8.0
    lo, hi = mixture_span(GaussianMixture([1.0], [[20.0]], [4.0]))
    assert (lo, hi) == (-8.0, 36.0)


@pytest.mark.parametrize("kwargs, match", [({"Ts": [50]}, "Ts must hold"), ({"Ts": [50, 100], "cells": 8}, "cells must be"), ({"Ts": [50, 100], "target": GaussianMixture([1.0], [[1.0, 0.0]], [1.0])}, "rotation-invariant"), ({"Ts": [50, 100], "sampler": "one_score_reuse"}, "no exact law")])
def test_exact_tv_rate_refuses_bad_input(kwargs, match):
    args = {"sampler": "ddpm", "target": GMM, **kwargs}
    with pytest.raises(ValueError, match=match):
        exact_tv_rate(**args)


def test_mixture_span_is_symmetric_in_a_symmetric_target():
    lo, hi = mixture_span(GaussianMixture([0.5, 0.5], [[-3.0], [3.0]], [1.0, 1.0]), n_std=5)
    assert np.isclose(lo, -hi) and hi == 8.0


def _user_ddim(score, schedule, y, **kw):
    """A user's deterministic sampler, a plain function (DDIM through the registry)."""
    from cmtheory.samplers import SAMPLERS

    return SAMPLERS["ddim"].run(score, schedule, y, **kw)


def test_sampler_rate_takes_a_plain_function_in_T_and_in_d():
    """A plain deterministic function gets exact pushforward laws: first order in T on the 1-D
    mixture (DDIM, within 0.1 of -1 over T = 50..200), and a d exponent on the scale mixture
    0.5 N(0, 0.5 I_d) + 0.5 N(0, I_d) over d = 8..512 at T = 100 that equals the registered DDIM's
    (the same laws, to 1e-9); the method is named in the result."""
    import torch

    from cmtheory.samplers import SAMPLERS

    fit = sampler_rate(_user_ddim, GMM, [50, 100, 200])
    assert abs(fit.exponents["T"] + 1) < 0.1 and fit.extra["measure"] == "exact TV (pushforward of the map)"
    mixture = lambda d: GaussianMixture([0.5, 0.5], torch.zeros(2, d), [0.5, 1.0])  # noqa: E731
    mine = sampler_rate(_user_ddim, mixture, ds=[8, 64, 512], T=100)
    theirs = sampler_rate(SAMPLERS["ddim"], mixture, ds=[8, 64, 512], T=100)
    assert mine.exponents["d"] == pytest.approx(theirs.exponents["d"], abs=1e-9) and 0 < mine.exponents["d"] < 2


def test_sampler_rate_measures_a_sampler_without_an_exact_law_by_monte_carlo():
    """one_score_reuse (no Gaussian transitions): W1 of n = 2e5 outputs against the exact CDF at
    T = 22, 31, 44 (W1 0.0135, 0.0070, 0.0041 against the floor 0.0027, bootstrap se about 1e-3,
    measured), each with its floor; the fit names the method, keeps every point's floor, and its T
    exponent is negative (the sampler is first order)."""
    fit = sampler_rate("one_score_reuse", GMM, [22, 31, 44], n=200_000)
    assert "W1" in fit.extra["measure"] and "n = 200000" in fit.extra["measure"]
    assert all(p["floor"] > 0 for p in fit.points) and fit.exponents["T"] < 0
    with pytest.raises(ValueError, match="exactly one of Ts"):
        sampler_rate("ddpm", GMM)
    with pytest.raises(ValueError, match="T must be"):
        sampler_rate("ddpm", lambda d: GMM, ds=[1, 2])


def test_sampler_rate_on_a_sphere_compares_step_1_with_x1():
    """The sphere of radius sqrt(d) is singular: the rate is of TV(Y_1, X_1), the chain stopped at
    step 1 (as high_dim's sphere rows); DDPM at T = 100 over d = 4, 16, 64: the TV at d = 16 equals
    a direct sampler_law_radial at t_stop = 1 against the noisy sphere's radial law at step 1 (to
    the Richardson error), and the d exponent is near 0 (high_dim measures 0.000 [-0.002, 0.002])."""
    import math

    from cmtheory.laws import radial_law, richardson_law
    from cmtheory.metrics import tv_grid
    from cmtheory.processes import linear_schedule
    from cmtheory.samplers import sampler_law_radial
    from cmtheory.targets import Sphere
    from cmtheory.testing import radius_span

    sphere = lambda d: Sphere(d, d, radius=math.sqrt(d))  # noqa: E731
    fit = sampler_rate("ddpm", sphere, ds=[4, 16, 64], T=100, start="normal")
    assert abs(fit.exponents["d"]) < 0.05
    sched, target = linear_schedule(100), sphere(16)
    lo, hi = radius_span(target)
    law = richardson_law(lambda e: sampler_law_radial("ddpm", target, sched, e, start="normal", t_stop=1), lo, hi, int(math.ceil((hi - lo) / math.sqrt(sched.beta(1)))))
    direct = tv_grid(law, radial_law(target, *sched.channel(1), law.edges)).value
    point = next(p for p in fit.points if p["d"] == 16)
    assert abs(point["y"] - direct) <= 2 * law.grid_error + 1e-12
