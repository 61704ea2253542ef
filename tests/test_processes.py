"""Processes: schedules, channels and time conversions."""

import math

import pytest
import torch

from cmtheory.processes import (
    EDM,
    ContinuousVP,
    DiscreteVP,
    TrigFlow,
    abar_from_lam,
    cosine_schedule,
    lam_from_abar,
    lam_from_trigflow_t,
    linear_schedule,
    theory_schedule,
    trigflow_t_from_lam,
)


def test_discrete_chain_marginal_matches_simulation():
    """X_t = sqrt(1-beta_t) X_{t-1} + sqrt(beta_t) W_t  =>  Var X_T = abar_T Var X0 + 1 - abar_T."""
    sched = linear_schedule(50)
    g = torch.Generator().manual_seed(0)
    x = 2.0 * torch.randn(200_000, generator=g, dtype=torch.float64)
    for b in sched.betas:
        x = torch.sqrt(1 - b) * x + torch.sqrt(b) * torch.randn(x.shape, generator=g, dtype=torch.float64)
    a, s = sched.channel(50)
    var = 4 * a**2 + s**2
    assert abs(float(x.var()) - var) < 5 * var * (2 / 2e5) ** 0.5


def test_theory_schedule_definition_and_endpoint():
    T = 400
    sched = theory_schedule(T, c0=2, c1=8)
    rate = 8 * math.log(T) / T
    assert sched.beta(1) == pytest.approx(T**-2)
    for t in (1, 10, 200, 399):
        assert sched.beta(t + 1) == pytest.approx(rate * min(T**-2 * (1 + rate) ** t, 1))
    assert float(sched.abar[-1]) < T**-4  # docs/papers.md: about T^-5


def test_linear_and_cosine_schedules():
    lin = linear_schedule(1000)
    assert lin.beta(1) == pytest.approx(1e-4) and lin.beta(1000) == pytest.approx(0.02)
    cos = cosine_schedule(1000)
    assert float(cos.abar[0]) == 1 and float(cos.abar[-1]) < 1e-4
    assert cos.T == 1000 and (cos.betas <= 0.999).all()


def test_time_conversions_round_trip():
    lam = torch.tensor([0.01, 0.5, 2.0, 80.0], dtype=torch.float64)
    torch.testing.assert_close(lam_from_abar(abar_from_lam(lam)), lam)
    torch.testing.assert_close(lam_from_trigflow_t(trigflow_t_from_lam(lam, 0.5), 0.5), lam)
    for proc in (ContinuousVP(), EDM(), TrigFlow(0.5)):
        t = proc.time(lam)
        torch.testing.assert_close(proc.lam(t), lam)
        a, s = proc.channel(t)
        torch.testing.assert_close(s / a, lam)


def test_trigflow_channel_and_discrete_equivalence():
    """A TrigFlow time and a discrete step with the same EDM sigma are one channel up to scale."""
    sched = linear_schedule(100)
    tf = TrigFlow(0.5)
    for t in (1, 30, 100):
        lam = sched.lam(t)
        a, s = tf.channel(tf.time(lam))
        a2, s2 = sched.channel(t)
        assert float(s / a) == pytest.approx(s2 / a2, rel=1e-12)
    a, s = tf.channel(torch.tensor(math.pi / 4))
    assert float(a) == pytest.approx(math.sqrt(0.5)) and float(s) == pytest.approx(0.5 * math.sqrt(0.5))


def test_continuous_vp_channel():
    vp = ContinuousVP(0.1, 20.0)
    a, s = vp.channel(torch.tensor(1.0, dtype=torch.float64))
    assert float(a) == pytest.approx(math.exp(-0.5 * (0.1 + 9.95)))
    assert float(a**2 + s**2) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "build,match",
    [
        (lambda: DiscreteVP(torch.tensor([0.1, 1.0])), "open interval"),
        (lambda: DiscreteVP(torch.tensor([0.1, -0.1])), "open interval"),
        (lambda: DiscreteVP(torch.zeros(2, 2)), "1-D"),
        (lambda: linear_schedule(1), "T must be an int >= 2"),
        (lambda: linear_schedule(10, beta_max=20), "beta_max / T"),
        (lambda: theory_schedule(10), "c1 log T / T"),
        (lambda: linear_schedule(100).channel(101), "t must be an int step"),
        (lambda: TrigFlow(0.5).channel(torch.tensor(2.0)), "pi/2"),
        (lambda: TrigFlow(-1.0), "sigma_d"),
    ],
)
def test_invalid_inputs(build, match):
    with pytest.raises(ValueError, match=match):
        build()
