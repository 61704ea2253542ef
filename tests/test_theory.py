"""The bounds' formulas and exponents agree with each other."""

import math

import numpy as np
import pytest

from cmtheory.rates import fit_power_law
from cmtheory.theory import BOUNDS, bound, n_exponent


@pytest.mark.parametrize("key", ["li_huang_wei_ct", "li_cai_accelerated", "li_yan_ddpm", "li_icml2024_sde", "benton_kl"])
def test_declared_exponents_match_the_formula(key):
    """Fitting each bound's own values (at large T, where the logs vary slowly) recovers its
    declared exponents to within the log factors' local slope."""
    b = bound(key)
    Tg, dg = np.meshgrid(np.geomspace(1e8, 1e9, 4), [2.0, 4, 8, 16])
    y = np.array([b(d=d, T=t) for t, d in zip(Tg.ravel(), dg.ravel())])
    fit = fit_power_law(y, T=Tg.ravel(), d=dg.ravel())
    log_slack = 5 / math.log(1e8)  # d log(log^5 T) / d log T at T = 1e8
    assert abs(fit.exponents["T"] - b.exponents["T"]) <= log_slack + 1e-9
    assert fit.exponents["d"] == pytest.approx(b.exponents["d"], abs=1e-9)


@pytest.mark.parametrize("key", ["heroism", "heroism_k2"])
def test_heroism_exponents_match_theorem_1(key):
    """Theorem 1 at K = 3 and K = 2: the fitted exponents of the bound's own values (T = 1e8..1e9)
    are the declared ones within the slope of its log^(2K+2) T factor, d^(2+K) exactly, and the
    steps exponents are d^(1+2/K), eps^(-1/K)."""
    b = bound(key)
    K = -b.exponents["T"]
    assert b.log_powers["T"] == 2 * K + 2
    Tg, dg = np.meshgrid(np.geomspace(1e8, 1e9, 4), [2.0, 4, 8, 16])
    fit = fit_power_law(np.array([b(d=d, T=t) for t, d in zip(Tg.ravel(), dg.ravel())]), T=Tg.ravel(), d=dg.ravel())
    assert 0 <= fit.exponents["T"] - b.exponents["T"] <= b.log_powers["T"] / math.log(1e8)
    assert fit.exponents["d"] == pytest.approx(2 + K, abs=1e-9)
    assert b.steps_exponents == pytest.approx({"d": 1 + 2 / K, "inv_eps": 1 / K})


def test_steps_exponents_follow_from_rate_exponents():
    """err ~ d^b / T^a  =>  T ~ d^(b/a) eps^(-1/a)."""
    for key in ("li_huang_wei_ct", "li_cai_accelerated", "li_yan_ddpm", "li_icml2024_sde"):
        b = BOUNDS[key]
        a, bd = -b.exponents["T"], b.exponents["d"]
        assert b.steps_exponents["d"] == pytest.approx(bd / a)
        assert b.steps_exponents["inv_eps"] == pytest.approx(1 / a)


def test_dou_rates():
    assert n_exponent("dou_isolation", 4) == -0.25
    assert n_exponent("dou_isolation", 1) == -0.5  # the empirical-measure rate in d = 1, not n^(-1)
    assert n_exponent("dou_distillation", 5) == pytest.approx(-1 / 20)
    assert bound("dou_isolation")(n=10_000, d=4) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="unknown bound"):
        bound("nope")


def test_li_wei_chen_chi_exponents_are_its_leading_terms():
    """d^2 log^4 T / T + d^6 log^6 T / T^2: at T = 1e12..1e13 (where the second term is below 1e-4
    of the first for d <= 16) the fitted exponents are the declared d^2 (to 1e-3, the second term's
    share) and T^-1 within the log^4 factor's slope; steps T ~ d^2 / eps."""
    b = bound("li_wei_chen_chi_ode")
    Tg, dg = np.meshgrid(np.geomspace(1e12, 1e13, 4), [2.0, 4, 8, 16])
    fit = fit_power_law(np.array([b(d=d, T=t) for t, d in zip(Tg.ravel(), dg.ravel())]), T=Tg.ravel(), d=dg.ravel())
    assert fit.exponents["d"] == pytest.approx(b.exponents["d"], abs=1e-3)
    assert 0 <= fit.exponents["T"] - b.exponents["T"] <= b.log_powers["T"] / math.log(1e12) + 1e-3
    assert b.steps_exponents == pytest.approx({"d": 2.0, "inv_eps": 1.0})
