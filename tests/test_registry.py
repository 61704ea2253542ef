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
    expected = SAMPLERS[name].scores_per_step * T - SAMPLERS[name].scores_saved
    assert SAMPLERS[name].scores_saved == (1 if name in ("heun", "dpm_solver_2") else 0)
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


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_block_rows(name):
    """Blocks of 7 rows (64 rows: nine blocks, the last of 1): a deterministic sampler's output
    equals the unblocked run's to 1e-12 (float64; rows are independent given the score, only the
    score's matmul round-off may differ); a stochastic one equals its blocks run one after another
    from the same generator, exactly."""
    y = torch.randn(64, 2, generator=_gen(0), dtype=torch.float64)
    out = _run(name, y, _gen(1), block_rows=7)
    if SAMPLERS[name].kind == "deterministic":
        torch.testing.assert_close(out, _run(name, y, _gen(1)), rtol=0, atol=1e-12)
    else:
        g = _gen(1)
        torch.testing.assert_close(out, torch.cat([_run(name, y[a:a + 7], g) for a in range(0, 64, 7)]), rtol=0, atol=0)
    torch.testing.assert_close(_run(name, y, _gen(1), block_rows="auto"), _run(name, y, _gen(1)), rtol=0, atol=0)  # 64 rows: one block


def test_block_rows_errors_and_auto():
    """Bad block_rows, and block_rows with a callback or a trajectory, are refused; "auto" gives
    BLOCK_BYTES per block on a CPU (16384 rows of 64 float32)."""
    from cmtheory.samplers import cache_block_rows

    y = torch.zeros(10, 2, dtype=torch.float64)
    for bad in (0, -3, 2.5, True, "all"):
        with pytest.raises(ValueError, match="block_rows"):
            _run("ddpm", y, _gen(0), block_rows=bad)
    with pytest.raises(ValueError, match="callback"):
        _run("ddim", y, block_rows=4, callback=lambda t, y: None)
    with pytest.raises(ValueError, match="return_trajectory"):
        _run("ddim", y, block_rows=4, return_trajectory=True)
    assert cache_block_rows(torch.zeros(100_000, 64)) == 16384
    assert cache_block_rows(torch.zeros(5, 1 << 21, dtype=torch.float64)) == 1


def test_register_puts_a_user_sampler_in_the_registry_and_refuses_bad_ones():
    """A sampler written as its step's transitions registers, runs by name with DDPM's output
    (the same step and draws, exactly) and joins the exact-law samplers; a taken name, a malformed
    name, a spec that is not a SamplerSpec, and a declared scores_per_step that the sampler does not
    make are refused by name; unregister removes it."""
    from cmtheory.laws import ddpm_transitions
    from cmtheory.samplers import exact_law_samplers, register, unregister

    mine = SamplerSpec(None, "stochastic", 1, 1, False, "DDPM, as a user writes it", ddpm_transitions)
    register("my_ddpm", mine)
    try:
        assert SAMPLERS["my_ddpm"] is mine and "my_ddpm" in exact_law_samplers() and "my_ddpm" in sampler_names("stochastic")
        y = torch.randn(64, 2, generator=_gen(0), dtype=torch.float64)
        torch.testing.assert_close(_run("my_ddpm", y, _gen(1)), _run("ddpm", y, _gen(1)), rtol=0, atol=0)
        with pytest.raises(ValueError, match="registered already"):
            register("my_ddpm", mine)
    finally:
        unregister("my_ddpm")
    assert "my_ddpm" not in SAMPLERS
    with pytest.raises(ValueError, match="name"):
        register("2 steps", mine)
    with pytest.raises(ValueError, match="spec must be a SamplerSpec"):
        register("mine", ddpm_transitions)
    with pytest.raises(ValueError, match="scores_per_step disagrees.*called the score 49 times"):
        register("mine", SamplerSpec(SAMPLERS["heun"].fn, "deterministic", 2, 1, False, "Heun declared at one score a step"))
    with pytest.raises(ValueError, match="scores_per_step must be declared"):
        register("mine", SamplerSpec(SAMPLERS["ddim"].fn, "deterministic", 1, None, False, ""))
    with pytest.raises(ValueError, match="transitions describe a stochastic"):
        SamplerSpec(None, "deterministic", 1, 1, False, "", ddpm_transitions)
    with pytest.raises(ValueError, match="fn must be"):
        SamplerSpec(None, "stochastic", 1, 1, False, "")
    with pytest.raises(ValueError, match="name must be a registered sampler"):
        unregister("mine")
    assert "mine" not in SAMPLERS


def test_installed_plugins_register_their_samplers(monkeypatch):
    """Entry points of the group cmtheory.samplers: one that loads a SamplerSpec is registered under
    its name, one that loads a callable is called; one that fails to import, one that loads
    anything else, one whose name is taken (a built-in's) and one whose spec register refuses are
    skipped with a warning naming each, so that no plugin breaks cmtheory's import; each entry
    point is loaded once per process."""
    from types import SimpleNamespace

    import cmtheory.samplers.registry as R
    from cmtheory.laws import ddpm_transitions

    spec = SamplerSpec(None, "stochastic", 1, 1, False, "a plugin's DDPM", ddpm_transitions)
    wrong = SamplerSpec(None, "stochastic", 1, 2, False, "declares two scores a step, calls one", ddpm_transitions)

    def registers_its_own():
        R.register("plugin_b", spec)

    def broken():
        raise ImportError("no module named plugin_c")

    eps = [SimpleNamespace(name="plugin_a", value="pkg:SPEC", load=lambda: spec), SimpleNamespace(name="plugin_b", value="pkg:setup", load=lambda: registers_its_own),
           SimpleNamespace(name="plugin_c", value="missing:x", load=broken), SimpleNamespace(name="plugin_d", value="pkg:NUMBER", load=lambda: 3),
           SimpleNamespace(name="ddpm", value="pkg:DDPM", load=lambda: spec), SimpleNamespace(name="plugin_e", value="pkg:WRONG", load=lambda: wrong)]
    monkeypatch.setattr(R, "entry_points", lambda group: eps if group == R.PLUGIN_GROUP else [])
    monkeypatch.setattr(R, "_LOADED", set())
    try:
        with pytest.warns(UserWarning) as caught:
            assert R.load_sampler_plugins() == ["plugin_a", "plugin_b"]
        said = " ".join(str(w.message) for w in caught)
        for name, why in (("plugin_c", "no module named"), ("plugin_d", "must load a SamplerSpec"), ("ddpm", "registered already"), ("plugin_e", "scores_per_step disagrees")):
            assert f"{name!r}" in said and why in said
        assert SAMPLERS["plugin_a"] is spec and SAMPLERS["plugin_b"] is spec and SAMPLERS["ddpm"] is not spec and "plugin_e" not in SAMPLERS
        assert R.load_sampler_plugins() == []  # loaded once: no second call, no second warning
    finally:
        for name in ("plugin_a", "plugin_b"):
            SAMPLERS.pop(name, None)


def test_a_spec_describes_its_step_once_and_a_function_with_a_generator_is_stochastic():
    """fn and transitions together are refused (the sampler that runs is the one whose law is
    computed); a plain function with a generator parameter is a stochastic spec without an exact
    law, one without is a deterministic map."""
    from cmtheory.laws import ddpm_transitions
    from cmtheory.samplers import sampler_spec

    with pytest.raises(ValueError, match="fn must be None when transitions are given"):
        SamplerSpec(SAMPLERS["hessian_free"].fn, "stochastic", 1, 1, False, "", ddpm_transitions)
    noisy = sampler_spec(lambda score, schedule, y, generator=None, **kw: SAMPLERS["ddpm"].run(score, schedule, y, generator, **kw))
    assert noisy.kind == "stochastic" and noisy.exact_law is None
    plain = sampler_spec(lambda score, schedule, y, **kw: SAMPLERS["ddim"].run(score, schedule, y, **kw))
    assert plain.kind == "deterministic" and plain.exact_law == "pushforward"
    with pytest.raises(ValueError, match="sampler must be"):
        sampler_spec(3)
