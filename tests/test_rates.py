"""Rate fits on synthetic data with known exponents: recovery, CI coverage, floor
exclusion, verdicts, steps-to-eps and assert_rate messages."""

import math

import numpy as np
import pytest

from cmtheory.rates import VERDICTS, FitResult, assert_rate, fit_power_law, steps_to_eps, verdict

T = np.array([50, 100, 200, 400, 800], dtype=float)


def _noisy(a, rel, rng, C=3.0, Ts=T):
    return C * Ts**a * np.exp(rel * rng.standard_normal(Ts.size))


def test_parametric_bootstrap_coverage_is_nominal():
    """200 data sets with log-normal noise of known size: the 95% CI covers the true exponent
    in [0.91, 0.99] of them (binomial spread at 200 trials is +-0.03)."""
    rng = np.random.default_rng(0)
    hits = 0
    for rep in range(200):
        y = _noisy(-1.0, 0.05, rng)
        fit = fit_power_law(y, se=0.05 * y, T=T, n_boot=1000, seed=rep)
        lo, hi = fit.ci["T"]
        hits += lo <= -1.0 <= hi
    assert 0.91 <= hits / 200 <= 0.99, hits


def test_cluster_bootstrap_coverage_with_replicates():
    rng = np.random.default_rng(1)
    Ts = np.repeat(T, 6)
    hits = 0
    for rep in range(200):
        fit = fit_power_law(_noisy(-2.0, 0.1, rng, Ts=Ts), T=Ts, n_boot=1000, seed=rep)
        assert fit.method == "cluster bootstrap"
        lo, hi = fit.ci["T"]
        hits += lo <= -2.0 <= hi
    assert 0.91 <= hits / 200 <= 0.99, hits


def test_ols_t_interval_coverage():
    rng = np.random.default_rng(2)
    hits = sum(
        (lambda f: f.ci["T"][0] <= -0.5 <= f.ci["T"][1])(fit_power_law(_noisy(-0.5, 0.05, rng), T=T)) for _ in range(300)
    )
    assert 0.92 <= hits / 300 <= 0.98, hits


def test_joint_fit_recovers_both_exponents():
    rng = np.random.default_rng(3)
    Tg, dg = np.meshgrid([100.0, 200, 400, 800], [2.0, 4, 8, 16])
    y = 0.5 * Tg**-1.0 * dg**2.5 * np.exp(0.02 * rng.standard_normal(Tg.shape))
    fit = fit_power_law(y.ravel(), se=0.02 * y.ravel(), T=Tg.ravel(), d=dg.ravel())
    assert fit.ci["T"][0] <= -1.0 <= fit.ci["T"][1] and fit.ci["d"][0] <= 2.5 <= fit.ci["d"][1]
    assert fit.predict(T=100.0, d=2.0) == pytest.approx(0.5 * 100**-1 * 2**2.5, rel=0.05)


def test_weighted_fit_scales_by_birge_ratio_when_errors_are_understated():
    rng = np.random.default_rng(4)
    y = _noisy(-1.0, 0.2, rng)
    honest = fit_power_law(y, se=0.2 * y, T=T)
    understated = fit_power_law(y, se=0.02 * y, T=T)
    assert understated.chi2_red > 10
    w_h = honest.ci["T"][1] - honest.ci["T"][0]
    w_u = understated.ci["T"][1] - understated.ci["T"][0]
    assert w_u > 0.5 * w_h  # inflated back towards the honest width, not 10x narrower


def test_floor_points_are_excluded_and_reported():
    y = 2.0 * T**-1.0
    floor = np.full(T.size, 2.0 * 400**-1.0)  # the last two points sit at or below the floor
    fit = fit_power_law(y, se=0.01 * y, floor=floor, floor_se=0.01 * floor, T=T)
    excluded = fit.excluded
    assert [p["T"] for p in excluded] == [400.0, 800.0]
    assert all("noise floor" in p["reason"] for p in excluded)
    assert fit.exponents["T"] == pytest.approx(-1.0, abs=1e-9)


def test_verdict_branches():
    def fit(lo, hi):
        return FitResult({"T": 0.5 * (lo + hi)}, {"T": (lo, hi)}, 0.0, 0.95, "test")

    assert verdict(fit(-1.1, -0.9), "T", -1.0) == "matches"
    assert verdict(fit(-2.1, -1.9), "T", -1.0) == "faster than bound"
    assert verdict(fit(-0.6, -0.4), "T", -1.0) == "violates bound"
    assert verdict(fit(-2.0, 0.0), "T", -1.0) == "inconclusive (CI too wide)"
    assert set(VERDICTS) == {"matches", "faster than bound", "violates bound", "inconclusive (CI too wide)"}


def test_steps_to_eps_inverts_a_known_curve():
    """err = 3 / T is linear in log-log: T*(eps) = 3 / eps exactly."""
    Ts = np.array([10.0, 100, 1000, 10_000])
    for eps in (0.2, 0.01, 0.0005):
        assert steps_to_eps(Ts, 3 / Ts, eps) == pytest.approx(3 / eps)
    assert steps_to_eps(Ts, 3 / Ts, 1e-6) == math.inf
    assert steps_to_eps(Ts, 3 / Ts, 1.0) == 10.0


def test_assert_rate_passes_and_fails_with_a_full_message():
    rng = np.random.default_rng(5)
    y = _noisy(-1.0, 0.02, rng)
    fit = fit_power_law(y, se=0.02 * y, T=T)
    assert_rate(fit, "T", -1.0)
    with pytest.raises(AssertionError) as info:
        assert_rate(fit, "T", -2.0, bound=-2.0)
    msg = str(info.value)
    assert "measured" in msg and "expected -2.000" in msg and "violates bound" in msg and "T=800" in msg


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: fit_power_law([1.0, 2.0]), "at least one variable"),
        (lambda: fit_power_law([1.0, 0.5], T=[1.0, 2.0, 3.0]), "T must have 2 entries"),
        (lambda: fit_power_law([1.0, 0.5, 0.2], T=[1.0, -2.0, 3.0]), "must be > 0"),
        (lambda: fit_power_law([1.0, np.nan, 0.2], T=[1.0, 2.0, 3.0]), "NaN"),
        (lambda: fit_power_law([1.0, 0.5], T=[1.0, 2.0]), "more points"),
        (lambda: steps_to_eps([1.0], [1.0], 0.1), "length >= 2"),
    ],
)
def test_invalid_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()
