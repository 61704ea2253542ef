"""Stochastic samplers: Monte Carlo against exact laws, invalid inputs (the interface and the
evaluation counts of every sampler: tests/test_registry.py)."""

import pytest
import torch

from cmtheory.processes import linear_schedule
from cmtheory.laws import gaussian_law, uniform_grid
from cmtheory.samplers.exact_laws import exact_covariance_law_1d
from cmtheory.samplers import SAMPLERS
from cmtheory.laws import ddpm_transition
from cmtheory.samplers.stochastic import ddpm, li_icml2024
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
    y = SAMPLERS[sampler].run(prod.score, sched, y0, _gen(1), hvp=prod.hvp)
    f = prod.factor
    law = exact_covariance_law_1d(f.score, f.hvp, sched, uniform_grid(-7, 7, 2048))
    c = law.centers
    mean = float((law.masses * c).sum())
    var = float((law.masses * c * c).sum()) - mean**2
    n = y.numel()
    assert abs(float(y.mean()) - mean) < 5 * (var / n) ** 0.5
    assert abs(float(y.var()) - var) < 5 * var * (3 / n) ** 0.5  # kurtosis of a bimodal law < 3


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
    with pytest.raises(ValueError, match="first_noise"):
        li_icml2024(GAUSS.score, sched, torch.randn(4, 3, dtype=torch.float64), first_noise="paper")
