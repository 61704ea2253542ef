"""The sampler registry: every entry through one contract, and its records."""

import pytest
import torch

from cmtheory.processes import linear_schedule
from cmtheory.samplers import SAMPLERS, SamplerSpec, sampler_names
from cmtheory.samplers.scores import CountingScore
from cmtheory.targets import GaussianMixture

TARGET = GaussianMixture([0.5, 0.5], [[-1.0, 0.5], [1.0, 0.0]], [0.3, 0.2])
T = 25


def _run(name, y, generator=None, score=None, **kw):
    spec = SAMPLERS[name]
    return spec.run(score or TARGET.score, linear_schedule(T), y, generator if spec.kind == "stochastic" else None, hvp=TARGET.hvp, **kw)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_contract(name, dtype):
    """Shape, dtype and device kept; finite output; reproducible with a seeded generator (and
    changed by another seed for a stochastic sampler); callback once per step with t = T..1;
    trajectory of shape (T + 1, n, d) starting at y and ending at the output; t_stop honoured."""
    y = torch.randn(64, 2, generator=_gen(0), dtype=dtype)
    out = _run(name, y, _gen(1))
    assert out.shape == y.shape and out.dtype == dtype and out.device == y.device
    assert torch.isfinite(out).all()
    torch.testing.assert_close(_run(name, y, _gen(1)), out, rtol=0, atol=0)
    if SAMPLERS[name].kind == "stochastic":
        assert not torch.equal(_run(name, y, _gen(2)), out)
    seen = []
    _run(name, y, _gen(1), callback=lambda t, y: seen.append(t))
    assert seen == list(range(T, 0, -1))
    end, traj = _run(name, y, _gen(1), return_trajectory=True)
    assert traj.shape == (T + 1, 64, 2)
    torch.testing.assert_close(traj[0], y, rtol=0, atol=0)
    torch.testing.assert_close(traj[-1], end, rtol=0, atol=0)
    stopped = _run(name, y, _gen(1), t_stop=5)
    assert stopped.shape == y.shape
    with pytest.raises(ValueError, match="t_stop"):
        _run(name, y, _gen(1), t_stop=T)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_scores_per_step_match_the_record(name):
    """The registry's count, measured (Heun and DPM-Solver-2: one fewer in total, their last step is Euler)."""
    c = CountingScore(TARGET.score)
    _run(name, torch.randn(3, 2, dtype=torch.float64), _gen(0), score=c)
    expected = SAMPLERS[name].scores_per_step * T - (1 if name in ("heun", "dpm_solver_2") else 0)
    assert c.calls == expected


def test_records_and_errors():
    assert set(sampler_names()) == set(SAMPLERS)
    assert set(sampler_names("stochastic")) | set(sampler_names("deterministic")) == set(SAMPLERS)
    assert all(SAMPLERS[n].kind == "deterministic" for n in sampler_names("deterministic"))
    assert [n for n in SAMPLERS if SAMPLERS[n].needs_hvp] == ["exact_covariance"]
    with pytest.raises(ValueError, match="kind"):
        sampler_names("implicit")
    with pytest.raises(ValueError, match="kind"):
        SamplerSpec(lambda: None, "ode", 1, 1, False, "")
    y = torch.zeros(2, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="generator"):
        SAMPLERS["ddim"].run(TARGET.score, linear_schedule(T), y, _gen(0))
    with pytest.raises(ValueError, match="hvp"):
        SAMPLERS["exact_covariance"].run(TARGET.score, linear_schedule(T), y, _gen(0))
