"""Experiments: plain grids for both profiles, and quick versions of the slope assertions
that the CI keeps (empirical slopes against theory), run through each experiment's own code."""

import pandas as pd
import pytest

from cmtheory.rates import assert_rate, fit_power_law
from cmtheory.sweep import config_key
from experiments import registry


@pytest.mark.parametrize("name", list(registry()))
def test_grids_are_plain_and_full_extends_quick(name):
    mod = registry()[name]
    quick, full = mod.configs("quick"), mod.configs("full")
    keys = [config_key(c) for c in quick]
    assert len(set(keys)) == len(keys) > 0
    assert len(full) >= len(quick)


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

    cfgs = [{"kind": "exact", "sampler": s, "T": T, "cells": 1024, "n_mc": 2000} for s in ("ddpm", "exact_covariance") for T in (50, 100, 200)]
    df = _rows(A, cfgs)
    tv = df[df["d"] == 1]
    for sampler, expected, tol in (("ddpm", -1.0, 0.05), ("exact_covariance", -2.0, 0.15)):
        s = tv[tv["sampler"] == sampler]
        fit = fit_power_law(s["value"].to_numpy(float), T=s["T"].to_numpy(float))
        assert_rate(fit, "T", expected, tol=tol)


def test_consistency_training_slope_through_experiment():
    from experiments import consistency_training as C

    df = _rows(C, [{"target": "gaussian", "T": T, "cells": 2000} for T in (200, 400, 800, 1600)])
    s = df[(df["metric"] == "w2") & (df["d"] == 1)]
    assert_rate(fit_power_law(s["value"].to_numpy(float), T=s["T"].to_numpy(float)), "T", -1.0, tol=0.05)
    # product targets: W2 = sqrt(d) W2_1d exactly
    row = df[df["T"] == 200].set_index("d")["value"]
    assert row[16] == pytest.approx(4 * row[1])


def test_manifold_error_follows_intrinsic_not_ambient_dimension():
    """With the posterior variance, DDPM's exact TV to X_1 does not depend on d (fitted exponent
    within 0.05 of 0) and grows with k."""
    from experiments import manifold as M

    cfgs = [{"k": k, "d": d, "T": 100, "variance": "posterior"} for k in (1, 4) for d in (8, 32)]
    df = _rows(M, cfgs)
    tv = df[df["metric"] == "tv"]
    fit = fit_power_law(tv["value"].to_numpy(float), k=tv["k"].to_numpy(float), d=tv["d"].to_numpy(float))
    assert abs(fit.exponents["d"]) < 0.05 and fit.exponents["k"] > 0.2
