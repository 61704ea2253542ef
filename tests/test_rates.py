"""Rate fits on synthetic data with known exponents: recovery, CI coverage, floor
exclusion, verdicts, steps-to-eps and assert_rate messages."""

import math

import numpy as np
import pytest

from cmtheory.rates import REGIMES, VERDICTS, FitResult, assert_rate, asymptotic_regime, fit_power_law, fit_two_terms, log_slack, steps_to_eps, two_terms_predict, verdict

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

    assert verdict(fit(-1.1, -0.9), "T", -1.0) == "rate observed"
    assert verdict(fit(-1.1, -0.9), "T", -1.0, slack=0.5) == "rate observed"  # the bound's exponent itself wins
    assert verdict(fit(-0.8, -0.7), "T", -1.0, slack=0.5) == "consistent with the bound (log factors)"
    assert verdict(fit(-0.8, -0.7), "T", -1.0) == "violates the bound"  # no log factors, no band
    assert verdict(fit(-0.45, -0.4), "T", -1.0, slack=0.5) == "violates the bound"
    assert verdict(fit(-2.1, -1.9), "T", -1.0) == "faster than the bound"
    assert verdict(fit(-0.6, -0.4), "T", -1.0) == "violates the bound"
    assert verdict(fit(-2.0, 0.0), "T", -1.0) == "inconclusive (CI too wide)"
    assert verdict(fit(-0.9, 0.0), "T", -1.0, slack=0.2) == "inconclusive (CI too wide)"  # wide and meets the band
    assert verdict(fit(-4.7, -4.0), "T", -3.0) == "faster than the bound"  # wide, but wholly below the bound
    assert verdict(fit(-0.7, 0.1), "T", -1.0, slack=0.2) == "violates the bound"  # wide, but wholly above the band
    assert set(VERDICTS) == {"rate observed", "consistent with the bound (log factors)", "faster than the bound", "violates the bound", "inconclusive (CI too wide)"}
    with pytest.raises(ValueError, match="slack"):
        verdict(fit(-1.1, -0.9), "T", -1.0, slack=-0.1)
    with pytest.raises(ValueError, match="bound_exponent"):
        verdict(fit(-1.1, -0.9), "T", math.nan)


def test_log_slack_is_the_exponent_a_fit_measures_on_the_bounds_shape():
    """The slack of log^k T over the fitted range equals the fitted exponent of T^-1 log^k T minus
    (-1), exactly (same least-squares design)."""
    y = T**-1.0 * np.log(T) ** 3
    fit = fit_power_law(y, T=T)
    assert log_slack(fit, "T", 3) == pytest.approx(fit.exponents["T"] + 1.0, abs=1e-12)
    assert log_slack(fit, "T", 0) == 0.0


def _verdict_rates(make_y, slack_power, reps=200, rel=0.02):
    """Fraction of each verdict over ``reps`` noisy copies of ``make_y(T)`` against the bound -1."""
    rng = np.random.default_rng(10)
    counts = dict.fromkeys(VERDICTS, 0)
    for rep in range(reps):
        y = make_y(T_WIDE) * np.exp(rel * rng.standard_normal(T_WIDE.size))
        fit = fit_power_law(y, se=rel * y, T=T_WIDE, n_boot=500, seed=rep)
        counts[verdict(fit, "T", -1.0, log_slack(fit, "T", slack_power))] += 1
    return {k: v / reps for k, v in counts.items()}


T_WIDE = np.array([100, 200, 400, 800, 1600, 3200], dtype=float)


def test_verdicts_come_out_right_at_their_nominal_rates():
    """200 noisy copies (2% log-normal noise, T = 100..3200) against a bound T^-1 log^2 T.
    A pure T^-1 reads "rate observed" as often as its 95% CI covers -1 (binomial spread at 200
    trials +-0.03). T^-1 log^2 T sits at the edge of the log band by construction, so it reads
    "consistent with the bound (log factors)" except when the CI falls wholly above the band
    (about 2.5%); it never reads "rate observed" (the CI is far narrower than the 0.32 slack)."""
    pure = _verdict_rates(lambda t: 3 * t**-1.0, slack_power=2)
    assert 0.91 <= pure["rate observed"] <= 0.99, pure
    logged = _verdict_rates(lambda t: 3 * t**-1.0 * np.log(t) ** 2, slack_power=2)
    assert logged["consistent with the bound (log factors)"] >= 0.93 and logged["rate observed"] == 0.0, logged
    assert logged["violates the bound"] <= 0.06, logged


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
    assert "measured" in msg and "expected -2.000" in msg and "violates the bound" in msg and "T=800" in msg


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: fit_power_law([1.0, 2.0]), "at least one variable"),
        (lambda: fit_power_law([], T=[]), "nothing to fit"),
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


def _regime_rates(make_y, rel, reps=200, true_drift=None):
    """Fraction of each regime verdict over noisy copies, and the drift CI's coverage of
    ``true_drift``."""
    rng = np.random.default_rng(11)
    counts, hits = dict.fromkeys(REGIMES, 0), 0
    for rep in range(reps):
        y = make_y(T_WIDE) * np.exp(rel * rng.standard_normal(T_WIDE.size))
        reg = asymptotic_regime(fit_power_law(y, se=rel * y, T=T_WIDE, n_boot=100, seed=rep), n_boot=1000, seed=rep)
        counts[reg.verdict] += 1
        if true_drift is not None:
            hits += reg.drift_ci[0] <= true_drift <= reg.drift_ci[1]
    return {k: v / reps for k, v in counts.items()}, hits / reps


def _drifting(c):
    """y = T^(-1 + c u / 2), u = ln T - mean ln T: local exponent -1 + c u, drift exactly c."""
    m = np.log(T_WIDE).mean()
    return lambda t: 2 * t**-1.0 * np.exp(0.5 * c * (np.log(t) - m) ** 2)


def test_drift_diagnostic_at_its_nominal_rates():
    """200 noisy copies (0.1% log-normal noise) each. The drift CI covers the true drift at
    its nominal 95% (binomial spread +-0.03), both for a pure power law (drift 0) and for an
    exponent drifting by -0.02 per unit ln T; the pure law reads "asymptotic" and the drifting
    one "not yet asymptotic" except at about the CI's error rate. T^-1 log^2 T (drift -2/ln^2 T,
    about -0.05 here) reads "not yet asymptotic"."""
    words, cover = _regime_rates(lambda t: 3 * t**-1.0, 0.001, true_drift=0.0)
    assert 0.91 <= cover <= 0.99 and words["asymptotic (local slopes stable)"] >= 0.93, (words, cover)
    words, cover = _regime_rates(_drifting(-0.02), 0.001, true_drift=-0.02)
    assert 0.91 <= cover <= 0.99 and words["not yet asymptotic"] >= 0.95, (words, cover)
    words, _ = _regime_rates(lambda t: 3 * t**-1.0 * np.log(t) ** 2, 0.001)
    assert words["not yet asymptotic"] >= 0.95, words
    words, _ = _regime_rates(lambda t: 3 * t**-1.0, 0.05, reps=50)
    assert words["undetermined (drift CI too wide)"] >= 0.9, words  # 5% noise cannot resolve 0.005


def test_regime_local_slopes_and_reach_on_an_exact_curve():
    """Noise-free log-quadratic curve: the local slopes are the exact two-point slopes, the drift
    is exact, and reach() inverts the local exponent -1 + c u."""
    c = -0.02
    y = _drifting(c)(T_WIDE)
    reg = asymptotic_regime(fit_power_law(y, T=T_WIDE))
    assert reg.drift == pytest.approx(c, abs=1e-10) and reg.verdict == "not yet asymptotic"
    two_point = np.diff(np.log(y)) / np.diff(np.log(T_WIDE))
    assert [s for *_, s in reg.local_slopes] == pytest.approx(two_point, abs=1e-12)
    m = np.log(T_WIDE).mean()
    x_star, lo, hi = reg.reach(-1.2)  # -1 + c (ln x - m) = -1.2
    assert x_star == pytest.approx(math.exp(m + 0.2 / -c), rel=1e-8) and lo <= x_star <= hi
    assert reg.reach(-0.5)[0] == math.inf  # the drift heads the other way


def test_regime_with_replicates_and_joint_fits():
    """Replicates take the cluster bootstrap; in a joint fit (T, d) the drift is tested in T
    alone, with one intercept per value of d, so a d-dependence that is no power law does not
    leak into it: the drift comes out exact."""
    rng = np.random.default_rng(12)
    Ts = np.repeat(T_WIDE, 4)
    reg = asymptotic_regime(fit_power_law(3 * Ts**-2.0 * np.exp(0.001 * rng.standard_normal(Ts.size)), T=Ts))
    assert reg.method == "cluster bootstrap" and reg.verdict == "asymptotic (local slopes stable)"
    Tg, dg = np.meshgrid(T_WIDE, [2.0, 8.0, 32.0])
    y = _drifting(-0.03)(Tg) * (1 + dg**0.5 + np.log(dg) ** 2)
    reg = asymptotic_regime(fit_power_law(y.ravel(), T=Tg.ravel(), d=dg.ravel()), "T")
    assert reg.drift == pytest.approx(-0.03, abs=1e-9) and len(reg.local_slopes) == 5


def test_regime_refuses_what_it_cannot_test():
    fit = fit_power_law(3 * T_WIDE[:3] ** -1.0 * np.array([1.0, 1.01, 0.99]), T=T_WIDE[:3])
    with pytest.raises(ValueError, match="at least 4 distinct values of T"):
        asymptotic_regime(fit)
    joint = fit_power_law(np.arange(1.0, 7.0), T=T_WIDE, d=[1.0, 2, 1, 2, 1, 2])
    with pytest.raises(ValueError, match="name the variable"):
        asymptotic_regime(joint)
    with pytest.raises(ValueError, match="'n' is not in the fit"):
        asymptotic_regime(joint, "n")
    with pytest.raises(ValueError, match="tol must be > 0"):
        asymptotic_regime(fit_power_law(3 * T_WIDE**-1.0, T=T_WIDE), tol=0)


def test_two_term_fit_recovers_both_terms():
    """TV = 0.8 T^-1 + 0.3 eps^1.1 on a 4 x 5 grid of (T, eps), eps = 0 included: exact data give
    the exponents to 1e-8; with 2% log-normal noise, over 200 data sets the 95% CIs of both
    exponents cover the truth at least 90% of the time (Wald intervals on 16 dof)."""
    T = np.repeat([50, 100, 200, 400], 5).astype(float)
    eps = np.tile([0.0, 0.01, 0.02, 0.04, 0.08], 4)
    y = 0.8 * T**-1.0 + 0.3 * eps**1.1
    fit = fit_two_terms(y, T, eps)
    assert fit.exponents["T"] == pytest.approx(-1.0, abs=1e-8) and fit.exponents["eps"] == pytest.approx(1.1, abs=1e-8)
    np.testing.assert_allclose(two_terms_predict(fit, T, eps), y, rtol=1e-8)
    rng = np.random.default_rng(0)
    cover = {"T": 0, "eps": 0}
    for _ in range(200):
        f = fit_two_terms(y * np.exp(0.02 * rng.standard_normal(y.size)), T, eps)
        cover["T"] += f.ci["T"][0] <= -1.0 <= f.ci["T"][1]
        cover["eps"] += f.ci["eps"][0] <= 1.1 <= f.ci["eps"][1]
    assert min(cover.values()) >= 180


def test_two_term_fit_refuses_a_grid_where_a_term_never_matters():
    T = np.repeat([50.0, 100.0, 200.0], 3)
    with pytest.raises(ValueError, match="eps = 0"):
        fit_two_terms(T**-1.0, T, np.tile([0.01, 0.02, 0.04], 3))
    with pytest.raises(ValueError, match="same length"):
        fit_two_terms([1.0, 2.0], [1.0, 2.0], [0.0, 0.1])
