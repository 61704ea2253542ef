"""Experiments: plain grids for both profiles, and quick versions of the slope assertions
that the CI keeps (empirical slopes against theory), run through each experiment's own code."""

import json
import math
import re
import tempfile

import numpy as np
import pandas as pd
import pytest
import torch

from cmtheory.rates import VERDICTS, assert_rate, fit_power_law
from cmtheory.sweep import config_key
from experiments import registry


@pytest.mark.parametrize("name", list(registry()))
def test_grids_are_plain_and_full_extends_quick(name):
    mod = registry()[name]
    quick, full = mod.configs("quick"), mod.configs("full")
    keys = [config_key(c) for c in quick]
    assert len(set(keys)) == len(keys) > 0
    assert len(full) >= len(quick)
    for profile in ("quick", "full"):  # what checks --verify reruns is part of the profile's grid
        subset = {config_key(c) for c in mod.verify_configs(profile)}
        assert subset and subset <= {config_key(c) for c in mod.configs(profile)}


def _rows(mod, configs):
    out = []
    for c in configs:
        for r in mod.run(c, seed=0):
            out.append({**c, **r})
    return pd.DataFrame(out)


def test_accelerated_exact_law_slopes():
    """DDPM TV ~ T^-1 (Li & Yan) and exact-covariance TV ~ T^-2 (the principle behind Li & Cai),
    through the experiment's run(): T = 50..200 on a 1024-cell Richardson grid."""
    from experiments import accelerated as A

    cfgs = [{"kind": "exact", "sampler": s, "schedule": "linear", "T": T, "cells": 1024, "n_mc": 2000} for s in ("ddpm", "exact_covariance") for T in (50, 100, 200)]
    df = _rows(A, cfgs)
    tv = df[df["d"] == 1]
    for sampler, expected, tol in (("ddpm", -1.0, 0.05), ("exact_covariance", -2.0, 0.15)):
        s = tv[tv["sampler"] == sampler]
        fit = fit_power_law(s["value"].to_numpy(float), T=s["T"].to_numpy(float))
        assert_rate(fit, "T", expected, tol=tol)


def test_accelerated_checks_cover_the_registry():
    """Every sampler with an exact law gets a TV-vs-T row on the linear schedule (and every
    deterministic one on the theory schedule), every stochastic one a Monte Carlo row; each
    row's bound is the registry's design order or its paper's exponent, and its notes give the
    score evaluations to reach TV <= eps. A small grid (T = 50, 100, 200, 512 cells, no product
    dimensions) through run() and checks()."""
    from experiments import accelerated as A
    from cmtheory.samplers import SAMPLERS, exact_law_samplers, sampler_names

    cfgs = [{"kind": "exact", "sampler": s, "schedule": "linear", "T": T, "cells": 512, "n_mc": 0} for s in exact_law_samplers() for T in (50, 100, 200)]
    cfgs += [{"kind": "exact", "sampler": s, "schedule": "theory", "T": T, "cells": 512, "n_mc": 0} for s in sampler_names("deterministic") for T in (50, 100, 200)]
    cfgs += [{"kind": "mc", "sampler": s, "T": T, "rep": r, "n": 4000} for s in sampler_names("stochastic") for T in (25, 35, 50) for r in range(2)]
    cfgs += [{"kind": "exact", "sampler": s, "schedule": sch, "T": T0 * k, "cells": 512, "n_mc": 0} for s, T0 in A.FIT_FROM.items() for sch in A.SCHEDULES for k in (1, 2, 4) if T0 * k > 200]
    with tempfile.TemporaryDirectory() as tmp:
        checks = A.checks(_rows(A, cfgs), tmp, "test")
    claims = {c.claim: c for c in checks}
    for s in exact_law_samplers():
        c = claims[f"E: TV vs T, {s} (linear schedule, exact law, d=1)"]
        assert c.bound_exponent == -float(SAMPLERS[s].order) and any(n.startswith("Score evaluations") for n in c.notes)
    assert all(f"E: TV vs T, {s} (theory schedule, exact law, d=1)" in claims for s in sampler_names("deterministic"))
    assert all(any(k.startswith(f"E: W1 vs T, {s} ") for k in claims) for s in sampler_names("stochastic"))
    assert claims["E: TV at step T/8, li_icml2024_ode (linear schedule, exact law)"].verdict == "rate observed"
    for s, T0 in A.FIT_FROM.items():  # fitted from T0 on their longer grids, and only there
        for sch in A.SCHEDULES:
            c = claims[f"E: TV vs T, {s} ({sch} schedule, exact law, d=1)"]
            assert min(p["T"] for p in c.fit.points) >= T0 and any(n.startswith(f"Fitted from T = {T0}") for n in c.notes)


def test_consistency_training_slope_through_experiment():
    from experiments import consistency_training as C

    df = _rows(C, [{"target": "gaussian", "T": T, "cells": 2000} for T in (200, 400, 800, 1600)])
    s = df[(df["metric"] == "w2") & (df["d"] == 1)]
    assert_rate(fit_power_law(s["value"].to_numpy(float), T=s["T"].to_numpy(float)), "T", -1.0, tol=0.05)
    # product targets: W2 = sqrt(d) W2_1d exactly
    row = df[df["T"] == 200].set_index("d")["value"]
    assert row[16] == pytest.approx(4 * row[1])


def test_consistency_error_rows_stay_within_the_contraction_bound_and_end_in_a_verdict(tmp_path):
    """The eps_F rows through run() and checks(): W2 <= eps_F at every T, one row per target and
    frequency, each with the comparison verdict and the ratios in its notes."""
    from experiments import consistency_training as C

    cfgs = [{"target": name, "T": T, "cells": 1000, "eta": 1e-4, "omega": w} for name in C.TARGETS for w in C.OMEGAS for T in (100, 200, 400)]
    df = _rows(C, cfgs)
    assert (df["value"] <= df["eps_F"]).all() and (df["value"] > 0.4 * df["eps_F"]).all()
    fig, ax = C.plt.subplots()
    checks = C._eps_F_checks(df, C.BOUNDS["li_huang_wei_ct"], "test", ax)
    assert len(checks) == len(C.TARGETS) * len(C.OMEGAS)
    assert all(c.verdict == "as in the paper" and c.variable == "eps_F" and any("W2 / eps_F by T" in n for n in c.notes) for c in checks)


def test_manifold_error_follows_intrinsic_not_ambient_dimension():
    """With the posterior variance, DDPM's exact TV to X_1 does not depend on d (fitted exponent
    within 0.05 of 0) and grows with k."""
    from experiments import manifold as M

    cfgs = [{"k": k, "d": d, "T": 100, "variance": "posterior"} for k in (1, 4) for d in (8, 32)]
    df = _rows(M, cfgs)
    tv = df[df["metric"] == "tv"]
    fit = fit_power_law(tv["value"].to_numpy(float), k=tv["k"].to_numpy(float), d=tv["d"].to_numpy(float))
    assert abs(fit.exponents["d"]) < 0.05 and fit.exponents["k"] > 0.2


def test_direct_cm_regresses_on_the_teacher_and_checks_compare_methods(tmp_path):
    """B at a small budget (300 steps, 2 seeds): Direct CM, which regresses on the teacher's
    solve, is closer to it than CD (measured 0.03 against 0.5 at 1000 steps); the checks give
    one comparison per claim with a verdict from the fixed vocabulary."""
    from experiments import direct_cm as B

    df = _rows(B, [{"target": "ring8", "model": m, "iterations": 300, "rep": r} for m in ("cd", "direct") for r in range(2)])
    ode = df[df["metric"] == "ode_error_teacher"].groupby("model")["value"].mean()
    assert ode["direct"] < ode["cd"]
    checks = B.checks(df, str(tmp_path), "quick")
    assert len(checks) == 2 and all(c.verdict in ("as in the paper", "opposite of the paper", "no significant difference") for c in checks)
    assert "difference" in checks[0].measured() and (tmp_path / "direct_cm.png").exists()


def test_statistical_rate_exact_analogues_and_checks(tmp_path, monkeypatch):
    """C through the experiment's run(): the exact 1-D analogues (n = 64..4096, 4 seeds) give the
    empirical measure's n^(-1/2) (tolerance 0.15: the measured half-width of the CI at 4 seeds),
    the isolation analogue at delta = 0.002 within 2% of the memorisation limit and the
    distillation analogue above both (its teacher is smoothed); in d = 2 the isolation analogue
    at delta = 0.05 within delta E|Z| of the memorisation limit (triangle inequality) and the
    distillation analogue faster than its bound; the checks name every row, the
    neural rows carry their learning error against the exact flow map and say beyond which n the
    statistical error falls below three times it; in d = 1 the model's W1 is fitted with its
    training set's exact W1 as a control variate (the training set is the one its seed draws
    first). The d = 2 quantisers are halved (48^2 atoms for
    the empirical measure, 24^2 for the analogues: the brackets widen, the checks' rules are the
    same): under a third of the time at the profile's sizes."""
    from experiments import statistical_rate as C

    monkeypatch.setattr(C, "K", {**C.K, 2: 48})
    monkeypatch.setattr(C, "KS", {**C.KS, 2: 24})
    monkeypatch.setattr(C, "PAIRS", 256)
    monkeypatch.setattr(C, "CONTROL_DRAWS", 20)
    monkeypatch.setattr(C, "EVAL", {**C.EVAL, 1: 4000})
    cfgs = [{"kind": "exact_1d", "d": 1, "n_train": n, "rep": r} for n in (64, 256, 1024, 4096) for r in range(4)]
    cfgs += [{"kind": "exact_product", "d": 2, "n_train": n, "rep": r} for n in (16, 64, 256) for r in range(2)]
    cfgs += [{"kind": "neural", "d": d, "n_train": n, "rep": 0, "iterations": 20, "width": 16, "depth": 2} for d in (1, 2) for n in (0, 64)]
    df = _rows(C, cfgs)
    one = df[df["d"] == 1]
    emp = one[one["metric"] == "w1_empirical"]
    assert_rate(fit_power_law(emp["value"].to_numpy(float), n=emp["n_train"].to_numpy(float)), "n", -0.5, tol=0.15)
    iso = one[(one["metric"] == "w1_isolation") & (one["delta"] == C.SIGMA_MIN)]["value"].mean()
    assert iso == pytest.approx(emp["value"].mean(), rel=0.02)
    assert one[one["metric"] == "w1_distillation"]["value"].mean() > emp["value"].mean()
    two = df[df["kind"] == "exact_product"].set_index(["n_train", "rep", "metric"])
    iso2 = two.xs("w1_isolation", level="metric")
    emp2 = two.xs("w1_empirical", level="metric")
    # W1(mu_n * N(0, delta^2 I), mu_n) <= delta E|Z|_2 = 0.05 sqrt(pi / 2), so the isolation analogue
    # lies within that and the two values' certified errors of the memorisation limit
    assert ((iso2["value"] - emp2["value"]).abs() <= 0.05 * math.sqrt(math.pi / 2) + emp2["se"] + iso2["se"]).all()
    assert ((iso2["ci_lo"] <= iso2["value"]) & (iso2["value"] <= iso2["ci_hi"])).all()
    checks = C.checks(df, str(tmp_path), "quick")
    assert [c.claim for c in checks] == [
        "C: W1 vs n, empirical measure (exact; the memorisation limit), d=1",
        "C: W1 vs n, isolation analogue, delta = 0.002, d=1",
        "C: W1 vs n, isolation analogue, delta = 0.05, d=1",
        "C: W1 vs n, distillation analogue, h(n) = n^(-1/5), delta = 0.002, d=1",
        "C: W1 vs n, one-step CM, d=1 (isolation exponent)",
        "C: W1 vs n, one-step CM, d=1 (distillation exponent)",
        "C: W1 vs n, empirical measure (exact OT to a quantised population), d=2",
        "C: W1 vs n, isolation analogue, delta = 0.05, d=2",
        "C: W1 vs n, distillation analogue, h(n) = n^(-1/6), delta = 0.002, d=2",
        "C: W1 vs n, one-step CM, d=2 (isolation exponent)",
        "C: W1 vs n, one-step CM, d=2 (distillation exponent)",
    ]
    assert checks[0].verdict in VERDICTS and checks[3].verdict == "faster than the bound"
    assert checks[8].verdict == "faster than the bound"  # distillation in d = 2: slope about -0.26 against -1/14
    assert any("falls below three times the learning error at the largest n trained (n = 64:" in note for note in checks[-1].notes)
    assert any("as a control variate" in note for note in checks[4].notes) and not any("control variate" in note for note in checks[-1].notes)
    le = df[df["metric"] == "learning_error"]
    assert len(le) == 4 and (le["value"] > 0).all() and (le["se"] < le["value"]).all()
    # d = 1: the model's W1 is exact against the population's CDF, its training set's W1 is the
    # empirical measure's exact W1, and the controlled value is their difference plus the fresh mean
    n1 = df[(df["kind"] == "neural") & (df["d"] == 1) & (df["n_train"] == 64)].set_index("metric")["value"]
    x = C.target(1).sample(64, torch.Generator().manual_seed(0))  # _rows runs every config at seed 0
    assert n1["w1_training_set"] == pytest.approx(C.empirical_w1_1d(x.numpy(), C.target(1).factor).value, rel=1e-12)
    assert C.controlled_w1(df[(df["kind"] == "neural") & (df["d"] == 1)])["value"].iloc[0] == pytest.approx(n1["w1_model"] - n1["w1_training_set"] + n1["w1_empirical_mean"], rel=1e-12)
    assert (tmp_path / "statistical_rate.png").exists()


def test_statistical_rate_fit_needs_three_values_of_n_above_every_limit():
    """A point enters claim C's fits only while W1 >= 3 x every named limit, the reasons name the
    limit that excluded it, and a fit needs three distinct n: W1 = n^(-1/2) exactly (two seeds,
    +-1%), so the slope over the kept n is -1/2 to 1e-9 (least squares on a symmetric design)."""
    import numpy as np
    import pandas as pd

    from experiments import statistical_rate as C

    ns = np.array([4, 16, 64, 256])
    s = pd.DataFrame({"n_train": np.repeat(ns, 2), "value": np.repeat(ns**-0.5, 2) * np.tile([0.99, 1.01], 4)})
    error = pd.Series([0.05, 0.05, 0.03, 0.03], index=ns)
    fit, notes, keep = C._fit_above(s, {"learning error": error, "W1 sample floor": 0.01})
    assert list(keep) == [4, 16, 64] and notes == ["Excluded: n=256 (learning error 0.03 > W1 0.0625 / 3)."]
    assert fit.exponents["n"] == pytest.approx(-0.5, abs=1e-9)
    fit, notes, keep = C._fit_above(s, {"learning error": error, "W1 sample floor": 0.045})
    assert fit is None and list(keep) == [4, 16]
    assert notes == ["Excluded: n=64 (W1 sample floor 0.045 > W1 0.125 / 3); n=256 (learning error 0.03 and W1 sample floor 0.045 > W1 0.0625 / 3)."]


def test_scm_ablation_is_recorded(tmp_path):
    """D at a tiny budget: every variant's outcome (diverged or not, W2s, tangent norm) lands in
    the ablation table, whatever the outcome."""
    from experiments import scm as D

    cfgs = [{"mode": "scd", "variant": v, "frequencies": 2, "iterations": 60, "rep": 0} for v in ("full", "neither")]
    df = _rows(D, cfgs + [{"mode": "sct", "variant": "full", "frequencies": 2, "iterations": 60, "rep": 0}])
    checks = {c.claim: c for c in D.checks(df, str(tmp_path), "quick")}
    table = "\n".join(checks["D: sCD stabiliser ablation (recorded, no assertion)"].notes)
    assert "| scd | neither | 2 sinusoids | 0 |" in table and "| sct | full | 2 sinusoids | 0 |" in table
    assert checks["D: sCD stabiliser ablation (recorded, no assertion)"].verdict == "recorded"
    assert re.search(r"scd/full \(2\): [01]/1 \(\d+%-\d+%\) failed", checks["D: sCD stabiliser ablation (recorded, no assertion)"].summary)
    assert "rests on 1 seeds" in checks["D: sCD with tangent normalisation and warmup trains without divergence"].notes[0]
    assert (df[df["metric"] == "loss"].groupby("variant").size() > 0).all()


def test_comparison_helpers_against_scipy():
    """Welch and paired t intervals of experiments._neural against scipy's own intervals."""
    import numpy as np
    import scipy.stats

    from experiments._neural import comparison_verdict, difference_ci, paired_difference_ci

    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 0.3, 5), rng.normal(0.5, 0.1, 4)
    diff, lo, hi = difference_ci(a, b)
    ci = scipy.stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert diff == pytest.approx(a.mean() - b.mean()) and (lo, hi) == pytest.approx((ci.low, ci.high), rel=1e-10)
    c = b + rng.normal(0.1, 0.05, 4)
    _, lo, hi = paired_difference_ci(c, b)
    ci = scipy.stats.ttest_rel(c, b).confidence_interval(0.95)
    assert (lo, hi) == pytest.approx((ci.low, ci.high), rel=1e-10)
    assert comparison_verdict(-0.3, -0.1, -1) == "as in the paper"
    assert comparison_verdict(-0.3, -0.1, +1) == "opposite of the paper"
    assert comparison_verdict(-0.3, 0.1, +1) == "no significant difference"


def test_failure_rate_carries_the_wilson_interval():
    """k/n with the Wilson 95% interval, against the closed form
    (p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)."""
    import math

    from experiments._neural import failure_rate

    z = 1.959963984540054
    for k, n in ((0, 3), (1, 3), (3, 3), (2, 10)):
        p = k / n
        half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
        lo, hi = ((p + z**2 / (2 * n) + s * half) / (1 + z**2 / n) for s in (-1, 1))
        assert failure_rate([True] * k + [False] * (n - k)) == f"{k}/{n} ({100 * lo:.0f}%-{100 * hi:.0f}%)"


def test_w_row_marks_a_diverged_sample_instead_of_failing():
    import math

    import torch

    from experiments._neural import w_row

    y = torch.randn(20, 2, dtype=torch.float64)
    bad = y.clone()
    bad[3, 1] = float("nan")
    row = w_row("w2", bad, y, y)
    assert row["value"] == math.inf and "non-finite" in row["method"]
    assert w_row("w2", y, y, y, batches=2)["value"] == pytest.approx(0.0, abs=1e-6)  # sqrt of OT round-off


def test_ideal_ct_verdicts_keep_observed_rates_apart_from_log_factors(tmp_path):
    """A's T rows as the quick profile computes them: T = 100..3200 on 8000 cells (4000 cells are
    refused at T = 3200: 0.0251 against 0.0277 on 2000, a grid error above 10%). Bimodal: W2 ~ T^-0.43, far from -1, reached only through the
    log^5 T band, and its local slope still drifts (-0.43 -> -0.46): "consistent with the bound
    (log factors)" and "not yet asymptotic". Gaussian: T^-0.978 [-0.980, -0.976]; an exact
    computation's CI only measures the departure from a pure power law, and T x W2 grows slowly
    (1.87 at T = 100, 2.02 at 3200, 2.08 at 25600 from the exact q_T), so -1 lies just outside
    it: "consistent with the bound (log factors)", with stable local slopes (drift -0.003 per
    unit ln T, inside the 0.005 tolerance)."""
    from experiments import consistency_training as C

    df = _rows(C, [{"target": name, "T": T, "cells": 8000} for name in C.TARGETS for T in (100, 200, 400, 800, 1600, 3200)])
    rows = {c.claim: c for c in C.checks(df, str(tmp_path), "quick")}
    bimodal, gaussian = rows["A: W2 vs T, ideal CT, bimodal (d=1)"], rows["A: W2 vs T, ideal CT, gaussian (d=1)"]
    assert bimodal.verdict == "consistent with the bound (log factors)" and bimodal.regime_verdict() == "not yet asymptotic"
    assert any("would reach -0.9 at T ~" in n for n in bimodal.notes)
    assert gaussian.verdict == "consistent with the bound (log factors)" and gaussian.regime_verdict() == "asymptotic (local slopes stable)"
    assert gaussian.fit.ci["T"][1] < -0.97


def test_score_error_separates_stochastic_from_deterministic_samplers():
    """Through run() and checks() on a small grid (T = 60, 512 cells): TV grows with eps_J at
    fixed eps for DDIM and stays flat or falls for DDPM; the eps rows fit in 1/eps against the
    bounds' -1, and the realised errors are reported."""
    from experiments import score_error as S

    base = {"cells": 512, "n_mc": 2000}
    cfgs = [{"kind": "eps", "sampler": s, "T": 60, "eps": e, "eps_J": e, **base} for s in ("ddpm", "ddim") for e in (0.0, 0.04, 0.08, 0.16, 0.32)]
    cfgs += [{"kind": "eps_J", "sampler": s, "T": 60, "eps": 0.02, "eps_J": 0.02 * w, **base} for s in S.SAMPLERS_SWEPT for w in (1, 4, 8, 16)]
    cfgs += [{"kind": "joint", "sampler": "ddpm", "T": T, "eps": e, "eps_J": e, **base} for T in (50, 100, 200) for e in (0.0, 0.02, 0.08)]
    with tempfile.TemporaryDirectory() as tmp:
        checks = S.checks(_rows(S, cfgs), tmp, "test")
    ddim_J = next(c for c in checks if c.claim.startswith("Score error: TV vs eps_J, ddim "))
    ddpm_J = next(c for c in checks if c.claim.startswith("Score error: TV vs eps_J, ddpm "))
    assert ddim_J.fit.exponents["eps_J"] > 0.4 and ddpm_J.fit.exponents["eps_J"] < 0.2
    eps_rows = [c for c in checks if c.claim.startswith("Score error: TV vs eps,")]
    assert len(eps_rows) == 2 and all(c.variable == "inv_eps" and c.bound_exponent == -1.0 for c in eps_rows)
    assert any("Realised errors" in n for c in eps_rows for n in c.notes)


def test_high_dim_rows_match_the_1d_engine_and_checks_end_in_verdicts(tmp_path):
    """The radial rows through run(): at d = 1 the TV of DDPM and of the exact-covariance sampler
    equals the 1-D engine's on the whole line (an independent path, to the laws' own grid error);
    the joint fits over d in {1, 8, 64} have T exponents within 0.1 of -1 for DDPM and within 0.2 of
    -2 for the exact-covariance sampler (their design orders); the TV-vs-d and TV-vs-T checks end
    in a verdict, and the family check names its worst member."""
    from experiments import high_dim as H
    from cmtheory.laws import gmm_1d_law, richardson_law
    from cmtheory.metrics import tv_grid
    from cmtheory.processes import linear_schedule
    from cmtheory.samplers.exact_laws import sampler_law_1d

    base = {"kind": "main", **H.MAIN, "cells_per_noise": 1}
    cfgs = [{**base, "sampler": s, "d": d, "T": T} for s in H.SAMPLER_BOUNDS for d in (1, 8, 64) for T in (50, 100, 200)]
    cfgs += [{"kind": "family", "sampler": "ddpm", "d": d, "T": H.FAMILY_T, "member": m, "cells_per_noise": 1} for m in H.FAMILY if m not in (H.MAIN_MEMBER, H.SPHERE_MEMBER) for d in (8, 64, 512)]
    cfgs += [{**base, "sampler": "ddpm", "d": d, "T": H.FAMILY_T} for d in (512,)]
    df = _rows(H, cfgs)
    target = H.scale_mixture(1, **H.MAIN)
    for sampler in ("ddpm", "exact_covariance"):
        row = df[(df["kind"] == "main") & (df["sampler"] == sampler) & (df["d"] == 1) & (df["T"] == 100)].iloc[0]
        law = richardson_law(lambda e: sampler_law_1d(sampler, target, linear_schedule(100), e, start="normal"), -8.0, 8.0, 2048)
        one_d = tv_grid(law, gmm_1d_law(target, 1.0, 0.0, law.edges))
        assert abs(row["value"] - one_d.value) <= row["se"] + one_d.se + row["grid_error"]
    checks = H.checks(df, str(tmp_path), "test")
    for sampler, order, tol in (("ddpm", -1, 0.1), ("exact_covariance", -2, 0.2)):
        fit_T = next(c for c in checks if c.claim.startswith(f"E (rotation-invariant): TV vs T, {sampler}"))
        assert abs(fit_T.fit.exponents["T"] - order) < tol
    assert all(not c.verdict.startswith("inconclusive") for c in checks if c.claim.startswith("E (rotation-invariant): TV vs"))
    family = next(c for c in checks if "family" in c.claim)
    assert any("The largest is the member" in n for n in family.notes)


def test_high_dim_sphere_rows_match_the_1d_engine_and_end_in_a_d_verdict(tmp_path):
    """The sphere rows through run(): at d = 1 the sphere of radius 1 is 0.5 (delta_-1 + delta_1), and
    the TV(Y_1, X_1) of DDPM equals the 1-D engine's on the whole line (an independent path, to the
    laws' own grid errors); over d in {1, 64, 512} at T = 200 the TV-vs-d check ends in a verdict
    with a d exponent within 0.05 of 0 (measured 0.000: the TV at step 1 does not grow with d on
    this target)."""
    from experiments import high_dim as H
    from cmtheory.laws import gmm_1d_law, richardson_law
    from cmtheory.metrics import tv_grid
    from cmtheory.processes import linear_schedule
    from cmtheory.samplers.exact_laws import sampler_law_1d
    from cmtheory.targets import Empirical

    df = _rows(H, [{"kind": "sphere", "sampler": "ddpm", "d": d, "T": T, "cells_per_noise": 1} for d in (1, 64, 512) for T in (100, 200)])
    sched = linear_schedule(200)
    two_points = Empirical([[-1.0], [1.0]])
    law = richardson_law(lambda e: sampler_law_1d("ddpm", two_points, sched, e, start="normal", t_stop=1), -8.0, 8.0, 4096)
    one_d = tv_grid(law, gmm_1d_law(two_points, *sched.channel(1), law.edges))
    row = df[(df["d"] == 1) & (df["T"] == 200)].iloc[0]
    assert abs(row["value"] - one_d.value) <= row["se"] + one_d.se + row["grid_error"] + law.grid_error
    from cmtheory.report import plt

    fig, ax = plt.subplots()
    (check,) = H._sphere_checks(df, ax, "test")
    plt.close(fig)
    assert check.variable == "d" and abs(check.fit.exponents["d"]) < 0.05
    assert check.verdict.startswith("faster than the bound")
    assert any("TV against T" in n for n in check.notes) and "at T = 200" in check.config


def test_high_dim_ideal_ct_rows_decay_like_1_over_T_and_end_in_verdicts(tmp_path):
    """The ideal-CT rows through run(): W2 of the radial recursion on the scale mixture for d in
    {8, 64}, T in {25, 50, 100}; the joint T exponent is within 0.1 of -1 (measured -0.98: the
    recursion's first-order discretisation), and both checks end in a verdict."""
    from experiments import high_dim as H
    from cmtheory.report import plt

    df = _rows(H, [{"kind": "ideal_ct", "d": d, "T": T, **H.MAIN, "cells": 2000} for d in (8, 64) for T in (25, 50, 100)])
    fig, ax = plt.subplots()
    checks = H._ideal_ct_checks(df, ax, "test")
    plt.close(fig)
    by_var = {c.variable: c for c in checks if "W2 vs" in c.claim}
    assert abs(by_var["T"].fit.exponents["T"] + 1) < 0.1
    assert all(not c.verdict.startswith("inconclusive") for c in by_var.values())
    steps = {c.variable: c for c in checks if "steps to W2" in c.claim}
    assert set(steps) == {"d", "inv_eps"} and abs(steps["inv_eps"].fit.exponents["inv_eps"] - 1) < 0.15  # T* ~ 1/eps where W2 ~ 1/T


def test_high_dim_ode_rows_match_the_1d_pushforward_and_end_in_verdicts(tmp_path):
    """The deterministic samplers' rows through run(): at d = 1 the radial pushforward's TV equals
    the 1-D pushforward's on the whole line (the target and both starts are symmetric, so TV of |Y|
    is TV of Y; an independent path, to 1e-9, far above both Newton residuals); over d in {1, 8, 64},
    T in {50, 100, 200}, from q_T, DDIM's joint T exponent is within 0.15 of -1 (its order) and
    HEROISM K = 3's below -2; every TV-vs-d check ends in a verdict; DPM-Solver++(2M), which has
    no bound with a d exponent, is checked against its design order in T with its d exponent in
    the notes; DDIM gets its steps-to-eps rows."""
    from experiments import high_dim as H
    from cmtheory.laws import gmm_1d_law, uniform_grid
    from cmtheory.metrics import tv_grid
    from cmtheory.processes import linear_schedule
    from cmtheory.report import plt
    from cmtheory.samplers import sampler_law_1d

    cfgs = [{"kind": "ode", "sampler": s, "start": "q_T", "d": d, "T": T, **H.MAIN, "cells_per_noise": 1} for s in ("ddim", "dpm_solver_pp_2m", "heroism") for d in (1, 8, 64) for T in (50, 100, 200)]
    df = _rows(H, cfgs)
    target = H.scale_mixture(1, **H.MAIN)
    for s in ("ddim", "heroism"):
        row = df[(df["sampler"] == s) & (df["d"] == 1) & (df["T"] == 100)].iloc[0]
        e = uniform_grid(*H.radius_grid(1, H.MAIN["v_small"], 100, 1))
        assert e[0] == 0  # the radius grid mirrored: the 1-D grid on which TV of Y equals TV of |Y|
        law = sampler_law_1d(s, target, linear_schedule(100), np.concatenate([-e[::-1], e[1:]]))
        assert abs(row["value"] - tv_grid(law, gmm_1d_law(target, 1.0, 0.0, law.edges)).value) < 1e-9
    fig, ax = plt.subplots()
    checks = H._ode_checks(df, ax, "test")
    plt.close(fig)
    tv_d = {c.claim.split(", ")[1].split(" ")[0]: c for c in checks if "TV vs d" in c.claim}
    assert set(tv_d) == {"ddim", "heroism"} and all(not c.verdict.startswith("inconclusive") for c in tv_d.values())
    assert abs(tv_d["ddim"].fit.exponents["T"] + 1) < 0.15 and tv_d["heroism"].fit.exponents["T"] < -2
    (dpm,) = [c for c in checks if c.claim.startswith("E (rotation-invariant): TV vs T, dpm_solver_pp_2m")]
    assert dpm.bound_exponent == -2.0 and any(n.startswith("No bound with a d exponent") for n in dpm.notes)
    assert {c.variable for c in checks if "steps to TV <= eps, ddim (from q_T)" in c.claim} == {"d", "inv_eps"}


def test_accelerated_row_without_its_longer_grid_is_inconclusive_not_an_error():
    """A table that lacks a FIT_FROM sampler's longer grid (an older table, a custom grid) gives
    that row an inconclusive verdict naming the missing values of T; the other rows still fit."""
    from experiments import accelerated as A
    from cmtheory.report import plt

    cfgs = [{"kind": "exact", "sampler": s, "schedule": "linear", "T": T, "cells": 512, "n_mc": 0} for s in ("dpm_solver_pp_2m", "ddim") for T in (50, 100, 200)]
    fig, ax = plt.subplots()
    checks = {c.claim: c for c in A._exact_T_checks(_rows(A, cfgs), "linear", "test", ax)}
    plt.close(fig)
    c = checks["E: TV vs T, dpm_solver_pp_2m (linear schedule, exact law, d=1)"]
    assert c.fit is None and c.verdict == "inconclusive (fewer than 3 values of T >= 800 in the table)"
    assert checks["E: TV vs T, ddim (linear schedule, exact law, d=1)"].fit is not None


@pytest.mark.parametrize("profile", ["quick", "full"])
def test_accelerated_profiles_build_every_schedule(profile):
    """Every config of the profile has a valid schedule (the linear schedule needs T > beta_max = 20:
    a quick Monte Carlo grid from T = 20 stopped the quick profile at its first config)."""
    from experiments import accelerated as A

    for c in A.configs(profile):
        A.SCHEDULES[c.get("schedule", "linear")](c["T"])


def test_worst_case_rows_record_and_checks(tmp_path, monkeypatch):
    """worst_case through run(): a recorded maximiser (here the narrowest Gaussian, N(0, 0.25 I_d))
    is re-evaluated to exact_error's value; a short search (K = 1) returns its maximiser and restart
    spread, and record() keeps the better of it and the recorded one; over d = 1, 4, 16 the checks
    fit the worst case's d exponent (TV of isotropic Gaussians grows like sqrt(d): within 0.15 of
    0.5; KL like d: within 0.05 of 1) and end in a verdict, with the maximisers in the notes."""
    from experiments import worst_case as W
    from cmtheory.processes import linear_schedule
    from cmtheory.targets import RadialMixture
    from cmtheory.worst_case import exact_error

    monkeypatch.setattr(W, "MAXIMISERS", tmp_path / "maximisers.json")
    monkeypatch.setattr(W, "K", 1)
    narrow = [{"sampler": "ddpm", "metric": m, "d": d, "tau_min": W.TAU_MIN, "weights": [1.0], "radii": [0.0], "widths": [W.TAU_MIN], "search_value": 0.0, "value": 0.0, "commit": "test"}
              for m in ("tv", "kl") for d in (1, 4, 16)]
    W.MAXIMISERS.write_text(json.dumps({"maximisers": narrow}))
    cfgs = [c for c in W.configs("quick") if c["kind"] == "recorded"]
    assert len(cfgs) == 6
    search = {"kind": "search", "sampler": "ddpm", "metric": "tv", "d": 4, "tau_min": W.TAU_MIN, "restarts": 2, "evaluations": 6}
    df = _rows(W, cfgs + [search]).assign(commit="abc1234")
    row = df[(df["kind"] == "recorded") & (df["metric"] == "tv") & (df["d"] == 4)].iloc[0]
    direct = exact_error("ddpm", RadialMixture(4, [1.0], [0.0], [W.TAU_MIN]), linear_schedule(W.T), start="normal")
    assert row["value"] == pytest.approx(direct.value, rel=1e-12)
    found = df[df["kind"] == "search"].iloc[0]
    assert len(json.loads(found["restart_values"])) == 2 and found["evaluated"] >= 12
    checks = W.checks(df, str(tmp_path), "test")
    tv = next(c for c in checks if c.claim.startswith("E worst case: TV vs d, ddpm"))
    kl = next(c for c in checks if c.claim.startswith("E worst case: KL vs d, ddpm"))
    assert abs(tv.fit.exponents["d"] - 0.5) < 0.15 and abs(kl.fit.exponents["d"] - 1.0) < 0.05
    assert tv.verdict in VERDICTS and kl.verdict in VERDICTS
    assert any(n.startswith("Maximisers") for n in tv.notes)
    results = tmp_path / "results"
    results.mkdir()
    df.to_csv(results / "worst_case.csv", index=False)
    W.record(str(results))
    kept = {(r["metric"], r["d"]): r for r in W.recorded()}
    assert kept[("tv", 4)]["value"] == pytest.approx(max(found["value"], 0.0)) and kept[("tv", 4)]["commit"] == "abc1234"
    assert kept[("kl", 16)]["value"] == 0.0
