"""Stochastic samplers: Monte Carlo against exact laws, invalid inputs (the interface and the
evaluation counts of every sampler: tests/test_registry.py)."""

import math

import pytest
import torch

from cmtheory.processes import linear_schedule
from cmtheory.laws import gaussian_law, uniform_grid
from cmtheory.samplers import sampler_law_1d
from cmtheory.samplers import SAMPLERS
from cmtheory.laws import ddpm_transition
from cmtheory.samplers.stochastic import DrawAhead, ddpm, hessian_free, li_icml2024, one_score_reuse, run_chain
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
    law = sampler_law_1d("exact_covariance", f, sched, uniform_grid(-7, 7, 2048), start="normal")
    c = law.centers
    mean = float((law.masses * c).sum())
    var = float((law.masses * c * c).sum()) - mean**2
    n = y.numel()
    assert abs(float(y.mean()) - mean) < 5 * (var / n) ** 0.5
    assert abs(float(y.var()) - var) < 5 * var * (3 / n) ** 0.5  # kurtosis of a bimodal law < 3


def _written_out(name, score, sched, y, g, clip=10.0):
    """The update rules of the samplers' docstrings, one allocation per term (the reference for
    the buffered loops); Z drawn by torch.randn in the samplers' order."""
    prev = None
    for t in range(sched.T, 0, -1):
        beta, a, s = sched.beta(t), *sched.channel(t)
        alpha_t, c = 1 - beta, math.sqrt(beta / (1 - beta))
        randn = lambda: torch.randn(y.shape, generator=g, dtype=y.dtype)  # noqa: E731
        if name == "ddpm":
            y = (y + beta * score(y, a, s)) / math.sqrt(alpha_t) + math.sqrt(beta) * randn()
        elif name == "hessian_free":
            z = randn()
            hz = (score(y + c * z, a, s) - score(y - c * z, a, s)) / (2 * c)
            y = (y + beta * score(y, a, s)) / math.sqrt(alpha_t) + c * (z + 0.5 * beta * hz)
        elif name == "one_score_reuse":
            st = score(y, a, s)
            if prev is not None:
                delta = 0.5 * prev[0] * (st - math.sqrt(1 - prev[0]) * prev[1])
                cap = clip * 0.5 * prev[0] * math.sqrt(prev[0] / (1 - prev[0])) * math.sqrt(y.shape[1])
                y = y + delta * torch.clamp(cap / delta.norm(dim=1, keepdim=True), max=1.0)
            prev = (beta, st)
            y = (y + beta * st) / math.sqrt(alpha_t) + c * randn()
        else:  # li_icml2024, the README's first noise
            y = y + math.sqrt(beta / 2) * randn()
            y = (y + beta * score(y, a, s)) / math.sqrt(alpha_t) + math.sqrt(beta / 2) * randn()
    return y


@pytest.mark.parametrize("name", ["ddpm", "hessian_free", "one_score_reuse", "li_icml2024"])
def test_buffered_loops_are_the_written_out_rules(name):
    """The samplers build each step in reused buffers and in place; the result equals the rule
    written out term by term, to float64 round-off (1e-12 over 25 steps), and the input is left
    untouched. one_score_reuse runs with clip = 0.5 so that its clipping acts."""
    sched = linear_schedule(25)
    y0 = torch.randn(300, 3, generator=_gen(), dtype=torch.float64)
    keep = y0.clone()
    kw = {"clip": 0.5} if name == "one_score_reuse" else {}
    sampler = {"ddpm": ddpm, "hessian_free": hessian_free, "one_score_reuse": one_score_reuse, "li_icml2024": li_icml2024}[name]
    out = sampler(GAUSS.score, sched, y0, _gen(1), **kw)
    torch.testing.assert_close(out, _written_out(name, GAUSS.score, sched, y0, _gen(1), **kw), rtol=1e-12, atol=1e-12)
    assert torch.equal(y0, keep)


@pytest.mark.parametrize("name", ["ddpm", "exact_covariance", "li_icml2024"])
def test_trajectory_and_callback_see_every_iterate(name):
    """The iterates live in two buffers used in turn: the trajectory keeps copies, a callback that
    copies what it sees gets the same states, and the last one is the output."""
    sched, seen = linear_schedule(25), []
    y0 = torch.randn(50, 3, generator=_gen(), dtype=torch.float64)
    spec = SAMPLERS[name]
    out, traj = spec.run(GAUSS.score, sched, y0, _gen(2), hvp=GAUSS.hvp, return_trajectory=True, callback=lambda t, y: seen.append(y.clone()))
    assert traj.shape[0] == 26 and torch.equal(traj[0], y0)
    torch.testing.assert_close(traj[1:], torch.stack(seen), rtol=0, atol=0)
    assert torch.equal(traj[-1], out)


@pytest.mark.parametrize("name", ["ddpm", "exact_covariance", "hessian_free", "one_score_reuse", "li_icml2024"])
@pytest.mark.parametrize("blocks", [None, 40])
def test_draw_ahead_changes_no_number(name, blocks):
    """Drawing Z on a second thread one call ahead gives the serial draws in the serial order: the
    output is bit-identical (tolerance 0), with blocks too, and the generator is left where serial
    draws leave it (the next number it gives is the same); the thread count is restored."""
    sched, threads = linear_schedule(25), torch.get_num_threads()
    y0 = torch.randn(100, 3, generator=_gen(), dtype=torch.float64)
    g_serial, g_ahead = _gen(3), _gen(3)
    spec = SAMPLERS[name]
    serial = spec.run(GAUSS.score, sched, y0, g_serial, hvp=GAUSS.hvp, block_rows=blocks)
    ahead = spec.run(GAUSS.score, sched, y0, g_ahead, hvp=GAUSS.hvp, block_rows=blocks, draw_ahead=True)
    assert torch.equal(serial, ahead)
    assert torch.equal(torch.rand(5, generator=g_serial), torch.rand(5, generator=g_ahead))
    assert torch.get_num_threads() == threads


def test_draw_ahead_of_another_shape_is_undone():
    """A call of another shape or dtype than the draw made ahead undoes that draw: the numbers are
    those of serial normal_ calls on the generator (tolerance 0), and close() leaves the generator
    at the serial position."""
    shapes = [(7, 3), (7, 3), (2, 5), (7, 3), (4,), (4,)]
    g = _gen(4)
    serial = [torch.empty(sh, dtype=torch.float64).normal_(generator=g) for sh in shapes]
    source = DrawAhead(_gen(4))
    try:
        ahead = [source.normal(torch.empty(sh, dtype=torch.float64)).clone() for sh in shapes]
    finally:
        source.close()
    for a, b in zip(serial, ahead):
        assert torch.equal(a, b)
    assert torch.equal(torch.rand(3, generator=g), torch.rand(3, generator=source.generator))


def test_draw_ahead_restores_threads_after_an_error():
    def failing(t, y, generator):
        generator.normal(y)
        raise RuntimeError("step failed")

    threads = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="step failed"):
        run_chain(failing, linear_schedule(30), torch.zeros(4, 2), _gen(), draw_ahead=True)
    assert torch.get_num_threads() == threads


def test_invalid_inputs():
    sched = linear_schedule(30)
    with pytest.raises(ValueError, match="draw_ahead must be a bool"):
        ddpm(GAUSS.score, sched, torch.randn(4, 3, dtype=torch.float64), draw_ahead=1)
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
