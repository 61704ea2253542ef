"""Stochastic samplers: Monte Carlo against exact laws, evaluation counts, interface."""

import pytest
import torch

from cmtheory.processes import linear_schedule
from cmtheory.samplers.exact_laws import exact_covariance_law_1d, gaussian_law, uniform_grid
from cmtheory.samplers.scores import CountingScore
from cmtheory.samplers.stochastic import (
    ddpm,
    ddpm_transition,
    exact_covariance,
    hessian_free,
    li_icml2024,
    one_score_reuse,
)
from cmtheory.targets import GaussianMixture, ProductMixture

GAUSS = GaussianMixture([1.0], [[0.3, -0.2, 1.0]], [[[0.5, 0.1, 0.0], [0.1, 0.3, 0.05], [0.0, 0.05, 0.8]]])


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("variance", ["beta", "posterior"])
def test_ddpm_moments_match_affine_recursion(variance):
    """Monte Carlo mean and covariance of DDPM's output on a Gaussian target against the exact
    law of the affine recursion: within 5 standard errors (Gaussian output, n = 100k)."""
    sched = linear_schedule(40)
    n = 100_000
    y = ddpm(GAUSS.score, sched, torch.randn(n, 3, generator=_gen(), dtype=torch.float64), _gen(1), variance=variance)
    steps = [lambda yy, t=t: ddpm_transition(GAUSS.score, sched, t, yy, variance) for t in range(40, 0, -1)]
    m, P = gaussian_law(torch.zeros(3), torch.eye(3), steps)
    se_m = torch.sqrt(torch.diagonal(P) / n)
    assert ((y.mean(0) - m).abs() < 5 * se_m).all()
    se_P = torch.sqrt((torch.diagonal(P)[:, None] * torch.diagonal(P)[None] + P**2) / n)
    assert ((torch.cov(y.T) - P).abs() < 5 * se_P).all()


@pytest.mark.parametrize("sampler", ["exact_covariance", "hessian_free", "one_score_reuse"])
def test_second_order_samplers_match_exact_covariance_law(sampler):
    """On a product target every coordinate is an independent 1-D chain, so n x d draws of the
    1-D output law. Their mean and variance match the exact-covariance sampler's exact law
    within 5 standard errors (the three differ by far less than that at n d = 320k)."""
    prod = ProductMixture(32, [0.4, 0.6], [-1.0, 1.0], [0.25, 0.16])
    sched = linear_schedule(60)
    y0 = torch.randn(10_000, 32, generator=_gen(), dtype=torch.float64)
    if sampler == "exact_covariance":
        y = exact_covariance(prod.score, prod.hvp, sched, y0, _gen(1))
    else:
        y = {"hessian_free": hessian_free, "one_score_reuse": one_score_reuse}[sampler](prod.score, sched, y0, _gen(1))
    f = prod.factor
    law = exact_covariance_law_1d(f.score, f.hvp, sched, uniform_grid(-7, 7, 2048))
    c = law.centers
    mean = float((law.masses * c).sum())
    var = float((law.masses * c * c).sum()) - mean**2
    n = y.numel()
    assert abs(float(y.mean()) - mean) < 5 * (var / n) ** 0.5
    assert abs(float(y.var()) - var) < 5 * var * (3 / n) ** 0.5  # kurtosis of a bimodal law < 3


@pytest.mark.parametrize(
    "name,per_step",
    [("ddpm", 1), ("one_score_reuse", 1), ("li_icml2024", 1), ("hessian_free", 3), ("exact_covariance", 1)],
)
def test_score_evaluations_per_step(name, per_step):
    sched = linear_schedule(25)
    counter = CountingScore(GAUSS.score)
    y0 = torch.randn(7, 3, dtype=torch.float64)
    if name == "exact_covariance":
        hvp_calls = []
        exact_covariance(counter, lambda x, v, a, s: hvp_calls.append(1) or GAUSS.hvp(x, v, a, s), sched, y0)
        assert len(hvp_calls) == 25
    else:
        {"ddpm": ddpm, "one_score_reuse": one_score_reuse, "li_icml2024": li_icml2024, "hessian_free": hessian_free}[name](
            counter, sched, y0
        )
    assert counter.calls == per_step * 25
    assert counter.rows == per_step * 25 * 7


def test_reproducible_trajectory_callback_and_t_stop():
    sched = linear_schedule(30)
    y0 = torch.randn(5, 3, dtype=torch.float64)
    seen = []
    a, traj = ddpm(GAUSS.score, sched, y0, _gen(3), return_trajectory=True, callback=lambda t, y: seen.append(t))
    b = ddpm(GAUSS.score, sched, y0, _gen(3))
    assert torch.equal(a, b) and traj.shape == (31, 5, 3) and torch.equal(traj[-1], a)
    assert seen == list(range(30, 0, -1))
    c = ddpm(GAUSS.score, sched, y0, _gen(3), t_stop=10, return_trajectory=True)[1]
    assert c.shape == (21, 5, 3)


def test_float32_runs_in_float32():
    y = ddpm(GAUSS.score, linear_schedule(30), torch.randn(4, 3), _gen())
    assert y.dtype == torch.float32 and torch.isfinite(y).all()


def test_invalid_inputs():
    sched = linear_schedule(30)
    with pytest.raises(ValueError, match="t_stop"):
        ddpm(GAUSS.score, sched, torch.randn(4, 3, dtype=torch.float64), t_stop=30)
    with pytest.raises(ValueError, match="schedule must be a DiscreteVP"):
        ddpm(GAUSS.score, None, torch.randn(4, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="NaN"):
        ddpm(GAUSS.score, sched, torch.full((4, 3), float("nan"), dtype=torch.float64))
    with pytest.raises(ValueError, match="variance must be"):
        ddpm(GAUSS.score, sched, torch.randn(4, 3, dtype=torch.float64), variance="x")
