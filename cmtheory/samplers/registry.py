"""One registry of the samplers on the discrete VP chain: ``SAMPLERS[name]`` is a :class:`SamplerSpec`.

A sampler is one function (or, for a stochastic sampler whose steps are Gaussian given the
state, its step's transitions) plus one :func:`register` call; the built-ins register the same
way. Experiments, benchmarks and tests read the registry instead of their own name tables, and
the exact-law engines read a spec's description of its step, never its name
(:func:`cmtheory.samplers.sampler_law_1d`, :func:`cmtheory.samplers.sampler_law_radial`): a
deterministic sampler's map is pushed forward, a Gaussian-step sampler's transitions are
propagated; a stochastic sampler given only as a function (``hessian_free``,
``one_score_reuse``) has no exact law and is measured by Monte Carlo against an exact reference.
"""

from __future__ import annotations

import functools
import inspect
import re
import warnings
from importlib.metadata import entry_points
from dataclasses import dataclass
from typing import Callable

import torch

from cmtheory.laws.transitions import StepTransitions, ddpm_transitions, exact_covariance_transitions, li_icml2024_transitions
from cmtheory.processes import linear_schedule
from cmtheory.samplers.chain_ode import heroism, li_icml2024_ode, on_vp_chain
from cmtheory.samplers.ode import ddim, dpm_solver_2, dpm_solver_pp_2m, heun
from cmtheory.samplers.scores import CountingScore
from cmtheory.samplers.stochastic import gaussian_chain, hessian_free, one_score_reuse

__all__ = [
    "SamplerSpec", "SAMPLERS", "register", "unregister", "load_sampler_plugins", "sampler_spec", "sampler_names", "exact_law_samplers",
    "cache_block_rows", "BLOCK_BYTES", "PLUGIN_GROUP",
]

#: the entry-point group through which an installed package adds its samplers to the registry
PLUGIN_GROUP = "cmtheory.samplers"
#: the entry points (name, value) loaded in this process
_LOADED: set = set()

KINDS = ("stochastic", "deterministic")


@dataclass(frozen=True)
class SamplerSpec:
    """A sampler: its function, or the Gaussian transitions of its step, and its records.

    Attributes
    ----------
    fn : callable or None
        Stochastic: ``fn(score, schedule, y, generator=None, **kw)`` (``fn(score, hvp, schedule,
        y, generator=None, **kw)`` when ``needs_hvp``); deterministic: ``fn(score, schedule, y, **kw)``.
        Every one takes ``t_stop``, ``callback`` and ``return_trajectory``. None (required) when
        ``transitions`` is given: the sampler is then :func:`cmtheory.samplers.gaussian_chain`
        of them, so that the sampler that runs and the law computed read one description.
    kind : {"stochastic", "deterministic"}
    order : int or None
        Design order in T: the error exponent -order the rule is built for (what the analysis of
        the rule gives, not necessarily what the authors claim; ``reference`` says which). None:
        not declared (a plain user function).
    scores_per_step : int or None
        Score evaluations per step; :func:`register` measures it. None: not declared.
    needs_hvp : bool
        Whether it takes a Hessian-vector product (one per step).
    reference : str
        Where the rule comes from, and what is reconstructed.
    transitions : callable, optional
        A stochastic sampler whose step (or each half-step) is Gaussian given the state:
        ``transitions(score, hvp, schedule, t, **kw)`` -> its maps ``y -> GaussianTransition``
        (:data:`cmtheory.laws.StepTransitions`). The exact-law engines propagate them; without
        them a stochastic sampler has no exact law.
    scores_saved : int
        Score evaluations fewer than ``scores_per_step * T`` over a run (Heun and DPM-Solver-2: 1,
        their last step to lambda = 0 is Euler).
    """

    fn: Callable | None
    kind: str
    order: int | None
    scores_per_step: int | None
    needs_hvp: bool = False
    reference: str = ""
    transitions: StepTransitions | None = None
    scores_saved: int = 0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        for name in ("order", "scores_per_step"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise ValueError(f"{name} must be a non-negative int or None, got {v!r}")
        if isinstance(self.scores_saved, bool) or not isinstance(self.scores_saved, int) or self.scores_saved < 0:
            raise ValueError(f"scores_saved must be a non-negative int, got {self.scores_saved!r}")
        if not isinstance(self.needs_hvp, bool):
            raise ValueError(f"needs_hvp must be a bool, got {self.needs_hvp!r}")
        if self.transitions is not None:
            if self.kind != "stochastic":
                raise ValueError("transitions describe a stochastic sampler's Gaussian steps: a deterministic sampler is its map fn (pass transitions=None)")
            if not callable(self.transitions):
                raise ValueError(f"transitions must be callable as transitions(score, hvp, schedule, t, **kw), got {type(self.transitions).__name__}")
            if self.fn is not None:  # one description of the step: the sampler that runs is the one whose law is computed
                raise ValueError("fn must be None when transitions are given: the sampler is gaussian_chain(transitions), so that it and its exact law read one description")
            object.__setattr__(self, "fn", gaussian_chain(self.transitions, self.needs_hvp))
        if not callable(self.fn):
            raise ValueError(f"fn must be the sampler's function (or None with transitions), got {type(self.fn).__name__}")

    @property
    def exact_law(self) -> str | None:
        """How its exact output law is computed: ``"pushforward"`` (a deterministic map),
        ``"markov"`` (Gaussian transitions), or None (Monte Carlo only)."""
        if self.kind == "deterministic":
            return "pushforward"
        return "markov" if self.transitions is not None else None

    def run(self, score, schedule, y, generator=None, *, hvp=None, block_rows=None, **kw):
        """Run the sampler from ``y`` = :math:`Y_T`.

        Parameters
        ----------
        score, schedule, y, generator
            As the sampler's function takes them; ``generator`` is refused by a deterministic sampler.
        hvp : callable, optional
            The score's Hessian-vector product, required when ``needs_hvp``.
        block_rows : int or "auto", optional
            Run the whole chain on blocks of this many rows of ``y``, one block after another, so
            that a block's iterates and the score's intermediates stay in the CPU's cache across
            the steps (:func:`cache_block_rows` for ``"auto"``). Samples are independent given the
            score, so a deterministic sampler gives the same output up to round-off; a stochastic
            sampler draws block after block from ``generator`` (reproducible, but another stream
            than the unblocked run's). Not with ``callback`` or ``return_trajectory``. None (the
            default): one block.
        **kw
            The sampler's keywords (``t_stop``, ``callback``, ``return_trajectory``, ...; a
            stochastic sampler's ``draw_ahead``, see :func:`cmtheory.samplers.stochastic.run_chain`).
        """
        if block_rows is None:
            return self._run(score, schedule, y, generator, hvp, **kw)
        rows = cache_block_rows(y) if block_rows == "auto" else block_rows
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
            raise ValueError(f"block_rows must be a positive int, 'auto' or None, got {block_rows!r}")
        if kw.get("callback") is not None or kw.get("return_trajectory"):
            raise ValueError("block_rows runs one block of rows after another: it cannot be combined with callback or return_trajectory (pass block_rows=None)")
        if not isinstance(y, torch.Tensor) or y.ndim != 2:
            raise ValueError(f"y must be a tensor of shape (n, d), got {tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__}")
        if y.shape[0] <= rows:
            return self._run(score, schedule, y, generator, hvp, **kw)
        return torch.cat([self._run(score, schedule, y[a:a + rows], generator, hvp, **kw) for a in range(0, y.shape[0], rows)])

    def _run(self, score, schedule, y, generator, hvp, **kw):
        if self.needs_hvp:
            if hvp is None:
                raise ValueError("this sampler needs hvp(x, v, alpha, sigma), the score's Hessian-vector product")
            return self.fn(score, hvp, schedule, y, generator, **kw)
        if self.kind == "deterministic":
            if generator is not None:
                raise ValueError("a deterministic sampler takes no generator")
            return self.fn(score, schedule, y, **kw)
        return self.fn(score, schedule, y, generator, **kw)


#: bytes of one (rows, d) block for ``block_rows="auto"``: at n = 1e5, d = 64, float32, K = 16 on
#: 2 cores with a 32 MiB L3, DDIM took 13.8 ms a step unblocked, 10.3 at 4096 rows (1 MiB) and
#: 8.3 at 16384 (4 MiB); HEROISM 146, 89 and 84; DPM-Solver++(2M) 16.4, 11.0 and 9.6
BLOCK_BYTES = 1 << 22


def cache_block_rows(y: torch.Tensor) -> int:
    """Rows of ``y`` in :data:`BLOCK_BYTES` on a CPU (at least one); all rows on other devices,
    whose caches a whole batch does not fit and whose kernels want large batches."""
    if y.device.type != "cpu":
        return max(1, y.shape[0])
    return max(1, BLOCK_BYTES // max(1, y[:1].numel() * y.element_size()))


SAMPLERS: dict[str, SamplerSpec] = {}
#: steps of the run in which :func:`register` counts a sampler's score calls (the linear schedule needs T > 20)
SCORE_COUNT_T = 25


def _scores_used(spec: SamplerSpec, T: int) -> int:
    r"""Score calls of one run of ``spec`` over T steps (linear schedule) on three points of N(0, I_2), whose noisy
    score is :math:`-x/(\alpha^2 + \sigma^2)`."""
    score = CountingScore(lambda x, alpha, sigma: -x / (alpha * alpha + sigma * sigma))
    y = torch.randn(3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(1) if spec.kind == "stochastic" else None
    spec.run(score, linear_schedule(T), y, generator, hvp=lambda x, v, alpha, sigma: -v / (alpha * alpha + sigma * sigma))
    return score.calls


def register(name: str, spec: SamplerSpec) -> SamplerSpec:
    """Put ``spec`` into :data:`SAMPLERS` under ``name``: the experiments' sweeps, the benchmarks,
    the exact-law engines and :mod:`cmtheory.testing` then take it by name.

    The spec is run once (T = :data:`SCORE_COUNT_T`, three points of N(0, I_2)) and its score calls counted.

    Parameters
    ----------
    name : str
        A new name: letters, digits and '_', starting with a letter.
    spec : SamplerSpec
        With ``scores_per_step`` declared.

    Returns
    -------
    SamplerSpec
        ``spec``.

    Raises
    ------
    ValueError
        A name taken or not of that form, or a spec whose declared ``scores_per_step`` (less
        ``scores_saved``) disagrees with the score calls it makes.
    """
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
        raise ValueError(f"name must be letters, digits and '_', starting with a letter; got {name!r}")
    if name in SAMPLERS:
        raise ValueError(f"name {name!r} is registered already (unregister it first, or choose another name)")
    if not isinstance(spec, SamplerSpec):
        raise ValueError(f"spec must be a SamplerSpec, got {type(spec).__name__}")
    if spec.scores_per_step is None:
        raise ValueError("spec.scores_per_step must be declared (an int) to register a sampler")
    T = SCORE_COUNT_T
    used, declared = _scores_used(spec, T), spec.scores_per_step * T - spec.scores_saved
    if used != declared:
        raise ValueError(f"spec.scores_per_step disagrees with the sampler: it declares {spec.scores_per_step} per step"
                         f"{f' less {spec.scores_saved} in all' if spec.scores_saved else ''}, i.e. {declared} over T = {T} steps, but it called the score {used} times")
    SAMPLERS[name] = spec
    return spec


def unregister(name: str) -> SamplerSpec:
    """Remove ``name`` from :data:`SAMPLERS` and return its spec (a ValueError if it is not registered)."""
    if name not in SAMPLERS:
        raise ValueError(f"name must be a registered sampler, one of {sorted(SAMPLERS)}; got {name!r}")
    return SAMPLERS.pop(name)


def load_sampler_plugins() -> list[str]:
    """Register the samplers that installed packages declare under the entry-point group
    :data:`PLUGIN_GROUP` (``cmtheory.samplers``), so that ``cmtheory run`` and the benchmarks take
    them by name: an entry point that loads a :class:`SamplerSpec` is registered under the entry
    point's name; one that loads a callable is called (it registers its own). Each entry point is
    loaded once per process. ``import cmtheory.samplers`` calls this, so every process (a sweep's
    workers too) sees the same registry; a plugin that fails (it does not import, its callable
    raises, :func:`register` refuses its spec, its name is taken) is skipped with a warning naming
    it, so that it cannot break cmtheory's import.

    Returns
    -------
    list of str
        The names the plugins added to :data:`SAMPLERS`.
    """
    before = set(SAMPLERS)
    for ep in entry_points(group=PLUGIN_GROUP):
        if (ep.name, ep.value) in _LOADED:
            continue
        _LOADED.add((ep.name, ep.value))
        try:
            obj = ep.load()
            if isinstance(obj, SamplerSpec):
                register(ep.name, obj)
            elif callable(obj):
                obj()
            else:
                raise ValueError(f"it must load a SamplerSpec or a callable that registers samplers, got {type(obj).__name__}")
        except Exception as err:  # a broken plugin must not break cmtheory's import: said, and skipped
            warnings.warn(f"cmtheory: the sampler plugin {ep.name!r} ({ep.value}) is not registered: {err}", stacklevel=2)
    return [name for name in SAMPLERS if name not in before]


def _parameters(fn) -> tuple:
    """The names of ``fn``'s parameters (none where Python cannot tell)."""
    try:
        return tuple(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return ()


def sampler_spec(sampler) -> SamplerSpec:
    """The spec of ``sampler``: a registered name, a :class:`SamplerSpec`, or a plain function (a
    spec with no declared order): ``fn(score, schedule, y, generator=None, **kw)``, one with a
    ``generator`` parameter, is stochastic (no exact law: Monte Carlo), ``fn(score, schedule, y,
    **kw)`` deterministic (a map)."""
    if isinstance(sampler, SamplerSpec):
        return sampler
    if isinstance(sampler, str):
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be a registered name, one of {sorted(SAMPLERS)}, a SamplerSpec or a deterministic function; got {sampler!r}")
        return SAMPLERS[sampler]
    if callable(sampler):
        name = getattr(sampler, "__name__", type(sampler).__name__)
        if "generator" in _parameters(sampler):  # fn(score, schedule, y, generator=None, **kw): Monte Carlo only
            return SamplerSpec(sampler, "stochastic", None, None, False, f"a user function, {name} (stochastic: it takes a generator)")
        return SamplerSpec(sampler, "deterministic", None, None, False, f"a user function, {name} (deterministic: it takes no generator)")
    raise ValueError(f"sampler must be a registered name, a SamplerSpec or a deterministic function fn(score, schedule, y, **kw); got {type(sampler).__name__}")


for _name, _spec in {
    "ddpm": SamplerSpec(None, "stochastic", 1, 1, False, "Ho et al. 2020; the sampler of Li & Yan 2024 (arXiv 2409.18959), TV <~ d log^3 T / T", ddpm_transitions),
    "exact_covariance": SamplerSpec(None, "stochastic", 2, 1, True, "cmtheory's T^-2 principle (docs/papers.md, section E): exact mean and covariance to O(beta^3); a stand-in for Li & Cai 2024, whose rule is not public", exact_covariance_transitions),
    "hessian_free": SamplerSpec(hessian_free, "stochastic", 2, 3, False, "the exact-covariance step with H z from a symmetric score difference (docs/papers.md, section E)"),
    "one_score_reuse": SamplerSpec(one_score_reuse, "stochastic", 1, 1, False, "a reconstruction in the spirit of Li & Cai 2024 (arXiv 2410.23285); its forward difference shifts the mean by O(beta^2) per step, so first order"),
    "li_icml2024": SamplerSpec(None, "stochastic", 1, 1, False, "Li, Huang, Efimov, Wei, Chi & Chen, ICML 2024 (arXiv 2403.03852), the authors' code; they claim TV O(1/T)", li_icml2024_transitions),
    "ddim": SamplerSpec(on_vp_chain(ddim), "deterministic", 1, 1, False, "Song, Meng & Ermon 2021"),
    "heun": SamplerSpec(on_vp_chain(heun), "deterministic", 2, 2, False, "Karras et al. 2022, Algorithm 1 without churn", scores_saved=1),
    "dpm_solver_2": SamplerSpec(on_vp_chain(dpm_solver_2), "deterministic", 2, 2, False, "Lu et al. 2022 (DPM-Solver-2, k-diffusion's sample_dpm_2)", scores_saved=1),
    "dpm_solver_pp_2m": SamplerSpec(on_vp_chain(dpm_solver_pp_2m), "deterministic", 2, 1, False, "Lu et al. 2022b (DPM-Solver++(2M))"),
    "li_icml2024_ode": SamplerSpec(li_icml2024_ode, "deterministic", 2, 1, False, "Li, Huang, Efimov, Wei, Chi & Chen, ICML 2024 (arXiv 2403.03852), the authors' code; they claim TV O(1/T^2)"),
    "heroism_k2": SamplerSpec(functools.partial(heroism, K=2), "deterministic", 2, 4, False, "Li, Zhou, Wei & Chen 2025 (arXiv 2506.24042), K = 2, N = 2; TV ~ (d/T)^K"),
    "heroism": SamplerSpec(functools.partial(heroism, K=3), "deterministic", 3, 9, False, "Li, Zhou, Wei & Chen 2025 (arXiv 2506.24042), K = 3, N = 3; TV ~ (d/T)^K"),
}.items():
    register(_name, _spec)
del _name, _spec


def sampler_names(kind: str | None = None) -> list[str]:
    """Registered names, all or those of one ``kind``."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS} or None, got {kind!r}")
    return [name for name, spec in SAMPLERS.items() if kind is None or spec.kind == kind]


def exact_law_samplers() -> list[str]:
    """Registered names with an exact output law (:attr:`SamplerSpec.exact_law`): every
    deterministic sampler and every stochastic one registered with its transitions."""
    return [name for name, spec in SAMPLERS.items() if spec.exact_law is not None]
