r"""Stochastic samplers on the discrete VP chain (docs/papers.md, section E).

All share one signature, ``sampler(score, schedule, y, generator=None, *, t_stop=0,
callback=None, return_trajectory=False, progress=False, draw_ahead=False)``: ``y`` is :math:`Y_T` (usually
N(0, I)), the loop runs t = T, ..., t_stop + 1 and returns :math:`Y_{t_{stop}}`. With
:math:`\alpha_t = 1 - \beta_t` and :math:`s_t` the score of the channel of step t:

* DDPM (Li & Yan's baseline):
  :math:`Y_{t-1} = (Y_t + \beta_t s_t(Y_t))/\sqrt{\alpha_t} + \sqrt{v_t} Z`;
* exact-covariance second-order step: the same mean, noise
  :math:`\sqrt{\beta_t/\alpha_t}\,(Z + \tfrac{\beta_t}{2} \nabla^2\log q_t(Y_t) Z)`, whose
  covariance :math:`\tfrac{\beta_t}{\alpha_t}(I + \beta_t H)` matches the true reverse
  transition to :math:`O(\beta^3)` (docs/papers.md, Tweedie moments);
* Hessian-free: the same with :math:`HZ \approx [s_t(Y_t + hZ) - s_t(Y_t - hZ)]/(2h)`;
* one score per step, reusing the previous score (a reconstruction of Li & Cai 2024);
* the accelerated SDE sampler of Li et al., ICML 2024 (the authors' published rule).

The Gaussian-transition samplers (DDPM, exact covariance) are written as a transition
``(mean, noise_map)`` in :mod:`cmtheory.laws.transitions`, so that :mod:`cmtheory.laws` propagates their
exact laws with the very same formulas.
"""

from __future__ import annotations

import inspect
import math
from concurrent.futures import ThreadPoolExecutor

import torch
from tqdm.auto import tqdm

from cmtheory._checks import chain_steps, check_points
from cmtheory.processes import DiscreteVP
from cmtheory.laws.transitions import (
    GaussianTransition,
    HvpFn,
    ScoreFn,
    StepTransitions,
    ddpm_transition,
    ddpm_transitions,
    exact_covariance_transition,
    exact_covariance_transitions,
    li_icml2024_transitions,
    step_constants,
    tweedie_mean,
)
from cmtheory.samplers.ode import _scratch

__all__ = [
    "GaussianTransition",
    "ddpm_transition",
    "exact_covariance_transition",
    "run_chain",
    "gaussian_chain",
    "DrawAhead",
    "ddpm",
    "exact_covariance",
    "hessian_free",
    "one_score_reuse",
    "li_icml2024",
    "li_icml2024_transitions",
]


def check_chain_inputs(schedule, y, t_stop) -> None:
    """A DiscreteVP ``schedule``, ``t_stop`` an int in 0..T-1, ``y`` a finite (n, d) tensor; else a ValueError naming the argument."""
    chain_steps(schedule, t_stop)
    if not isinstance(y, torch.Tensor) or y.ndim != 2:
        raise ValueError(f"y must be a tensor of shape (n, d), got {tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__}")
    check_points(y, y.shape[1], "y")


def run_chain(step, schedule: DiscreteVP, y, generator=None, *, t_stop=0, callback=None, return_trajectory=False, progress=False, draw_ahead=False):
    """Run ``y <- step(t, y, generator)`` for t = T, ..., t_stop + 1.

    Returns ``y`` or, with ``return_trajectory``, ``(y, trajectory)`` where trajectory has
    shape (T - t_stop + 1, n, d) and starts at Y_T. ``callback(t=t, y=y)`` runs after each step;
    the samplers here write their iterates into two buffers used in turn, so the ``y`` a callback
    sees is overwritten two steps later (copy it to keep it). The input ``y`` is never modified.

    ``draw_ahead=True`` (CPU only) draws each Gaussian Z on a second thread while the step
    before it computes, and runs the chain's own operations on one thread (:class:`DrawAhead`):
    the same numbers in the same order, so the output is identical. torch draws serially (one
    core, 16 ms for 1e5 x 64 float32, 13 ms of it the uniform stream), so where draws weigh as
    much as the score the second core is otherwise idle for them; where the score dominates
    (three scores or an HVP a step) one thread for it is slower. Measured at n = 1e5, d = 64,
    isotropic GMM K = 16, T = 100, ``block_rows="auto"``, 2 cores (2026-11-29): DDPM 2.6 s -> 1.75 s,
    one_score_reuse 2.8 -> 2.0, li_icml2024 4.4 -> 3.6; hessian_free 4.7 -> 5.1, exact_covariance
    8.5 -> 10.8 (benchmarks/run_all.py records it in BENCHMARKS.md).
    """
    check_chain_inputs(schedule, y, t_stop)
    if not isinstance(draw_ahead, bool):
        raise ValueError(f"draw_ahead must be a bool, got {draw_ahead!r}")
    if not draw_ahead:
        return _chain_loop(step, schedule, y, generator, t_stop, callback, return_trajectory, progress)
    if y.device.type != "cpu":
        raise ValueError(f"draw_ahead overlaps CPU draws with CPU compute; y is on {y.device} (pass draw_ahead=False)")
    source, threads = DrawAhead(generator), torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _chain_loop(step, schedule, y, source, t_stop, callback, return_trajectory, progress)
    finally:
        source.close()
        torch.set_num_threads(threads)


def _chain_loop(step, schedule, y, generator, t_stop, callback, return_trajectory, progress):
    traj = [y.clone()] if return_trajectory else None
    for t in tqdm(range(schedule.T, t_stop, -1), disable=not progress, desc="sampling"):
        y = step(t, y, generator)
        if traj is not None:
            traj.append(y.clone())
        if callback is not None:
            callback(t=t, y=y)
    return (y, torch.stack(traj)) if return_trajectory else y


class DrawAhead:
    """Standard normal draws from ``generator`` (None: torch's default CPU generator), each made
    on a second thread while the caller computes, one call ahead.

    :meth:`normal` returns the numbers serial ``normal_(generator=generator)`` calls would, in the
    same order, in one of two buffers used in turn (valid until the call after next). A call of
    another shape, dtype or device than the draw made ahead undoes that draw (the generator's state
    is saved before each) and draws serially; :meth:`close` undoes an unused draw, so the
    generator ends where serial draws leave it. Only this object may use the generator until then.

    Parameters
    ----------
    generator : torch.Generator, optional
        The CPU generator to draw from; None takes torch's default generator.
    """

    def __init__(self, generator=None):
        self.generator = torch.default_generator if generator is None else generator
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="cmtheory-draw")
        self._z = []
        self._pending = None  # (future, index into _z, generator state before the draw)

    def normal(self, like: torch.Tensor) -> torch.Tensor:
        """Z ~ N(0, I) shaped like ``like``; the next one starts drawing before this returns."""
        if self._pending is not None and not _same_layout(self._z[self._pending[1]], like):
            self._undo()
        if self._pending is None:
            if not self._z or not _same_layout(self._z[0], like):
                self._z = [torch.empty_like(like), torch.empty_like(like)]
            current = 0
            self._z[current].normal_(generator=self.generator)
        else:
            future, current, _ = self._pending
            future.result()
        nxt = 1 - current
        before = self.generator.get_state()
        self._pending = (self._pool.submit(self._z[nxt].normal_, generator=self.generator), nxt, before)
        return self._z[current]

    def _undo(self):
        future, _, before = self._pending
        self._pending = None
        future.result()
        self.generator.set_state(before)

    def close(self):
        """Undo the unused draw ahead and stop the thread."""
        try:
            if self._pending is not None:
                self._undo()
        finally:
            self._pool.shutdown()


def _same_layout(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.device == b.device


def _draw(state: dict, like: torch.Tensor, generator) -> torch.Tensor:
    """Z ~ N(0, I) shaped like ``like``, drawn into a buffer kept in ``state`` across steps: a fresh
    (n, d) tensor whose pages must be faulted in costs ~10x an in-place pass on CPU (5.2 ms against
    0.5 ms at n = 1e5, d = 64, float32), though in a steady loop the allocator often hands back the
    freed pages (1.17 ms against 1.08 ms). The draws equal ``torch.randn``'s. ``generator`` may be a
    :class:`DrawAhead` (``run_chain(..., draw_ahead=True)``), which hands out its own buffers."""
    if isinstance(generator, DrawAhead):
        return generator.normal(like)
    return _scratch(state, "z", like).normal_(generator=generator)


def _add_noise(tr: GaussianTransition, z: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``tr.mean + tr.noise(z)``, in place on the mean or into ``out``: one pass when the noise is
    ``tr.scale * z`` (no scaled copy of z)."""
    noise, alpha = (z, tr.scale) if tr.scale is not None else (tr.noise(z), 1.0)
    return tr.mean.add_(noise, alpha=alpha) if out is None else torch.add(tr.mean, noise, alpha=alpha, out=out)


def _iterate(state: dict, t: int, like: torch.Tensor, half: int = 0) -> torch.Tensor:
    """The buffer that receives Y_{t-1} (or the output of half-step ``half`` of step t): one of two
    kept in ``state`` per half-step, used in turn, so that a step never writes into its own input
    and allocates no (n, d) tensor of its own."""
    return _scratch(state, f"y{half}.{t % 2}", like)


#: run_chain's own keywords; a Gaussian-step sampler's other keywords go to its transitions
CHAIN_KEYWORDS = ("t_stop", "callback", "return_trajectory", "progress", "draw_ahead")


def _takes_out(transition) -> bool:
    """Whether a transition map takes ``out=``, a buffer for its mean."""
    try:
        return "out" in inspect.signature(transition).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        return False


def _gaussian_step(transitions: StepTransitions, score, hvp, schedule, options: dict):
    """``y <- mean + noise(Z)`` for each Gaussian half-step of step t in turn: a map that takes
    ``out`` writes its mean into an iterate buffer (:func:`_iterate`, one pair per half-step) and
    the noise is added in place; a mean that is not the buffer (the input itself, or a new
    tensor) is added to the noise into the buffer. Z from :func:`_draw`, one per half-step."""
    state = {}

    def step(t, y, generator):
        for i, transition in enumerate(transitions(score, hvp, schedule, t, **options)):
            buffer = _iterate(state, t, y, i)
            tr = transition(y, out=buffer) if _takes_out(transition) else transition(y)
            z = _draw(state, y, generator)
            y = _add_noise(tr, z) if tr.mean is buffer else _add_noise(tr, z, out=buffer)
        return y

    return step


def gaussian_chain(transitions: StepTransitions, needs_hvp: bool = False):
    r"""The stochastic sampler whose step t is the Gaussian half-steps ``transitions(score, hvp,
    schedule, t, **kw)`` (:data:`cmtheory.laws.StepTransitions`), each
    :math:`Y' = m(Y) + M(Y) Z` with a fresh Z: the one description that the sampler, its 1-D exact
    law (:func:`cmtheory.samplers.sampler_law_1d`) and its radial law
    (:func:`cmtheory.samplers.sampler_law_radial`) all read.

    Parameters
    ----------
    transitions : callable
        ``transitions(score, hvp, schedule, t, **kw)`` -> sequence of maps ``y -> GaussianTransition``
        (a map may take ``out=``, a buffer to write its mean into).
    needs_hvp : bool
        Whether the transitions use the Hessian-vector product ``hvp``.

    Returns
    -------
    callable
        ``sampler(score, schedule, y, generator=None, **kw)``, or ``sampler(score, hvp, schedule,
        y, generator=None, **kw)`` when ``needs_hvp`` (the registry's signatures); ``kw`` are
        :func:`run_chain`'s keywords and the transitions' own.
    """
    if not callable(transitions):
        raise ValueError(f"transitions must be callable as transitions(score, hvp, schedule, t, **kw), got {type(transitions).__name__}")

    def chain(score, hvp, schedule, y, generator=None, **kw):
        options = {k: v for k, v in kw.items() if k not in CHAIN_KEYWORDS}
        run = {k: v for k, v in kw.items() if k in CHAIN_KEYWORDS}
        return run_chain(_gaussian_step(transitions, score, hvp, schedule, options), schedule, y, generator, **run)

    if needs_hvp:
        return chain
    return lambda score, schedule, y, generator=None, **kw: chain(score, None, schedule, y, generator, **kw)


_ddpm_chain = gaussian_chain(ddpm_transitions)
_exact_covariance_chain = gaussian_chain(exact_covariance_transitions, needs_hvp=True)
_li_icml2024_chain = gaussian_chain(li_icml2024_transitions)


def ddpm(score: ScoreFn, schedule: DiscreteVP, y, generator=None, *, variance="beta", **kw):
    r"""DDPM (Ho et al. 2020; the sampler analysed by Li & Yan 2024).

    :math:`Y_{t-1} = (Y_t + \beta_t s_t(Y_t))/\sqrt{\alpha_t} + \sqrt{v_t} Z`, one score per step
    (:func:`cmtheory.laws.ddpm_transitions`).
    """
    return _ddpm_chain(score, schedule, y, generator, variance=variance, **kw)


def exact_covariance(score: ScoreFn, hvp: HvpFn, schedule: DiscreteVP, y, generator=None, **kw):
    r"""Exact-covariance second-order sampler (docs/papers.md section E, the T^-2 principle).

    :math:`Y_{t-1} = (Y_t + \beta_t s_t(Y_t))/\sqrt{\alpha_t} + \sqrt{\beta_t/\alpha_t}\,(Z + \tfrac{\beta_t}{2} H_t(Y_t) Z)`:
    one score and one Hessian-vector product per step (:func:`cmtheory.laws.exact_covariance_transitions`).
    """
    return _exact_covariance_chain(score, hvp, schedule, y, generator, **kw)


def hessian_free(score: ScoreFn, schedule: DiscreteVP, y, generator=None, **kw):
    r"""Hessian-free exact-covariance sampler: three score evaluations per step.

    .. math::
        Y_{t-1} = \frac{Y_t + \beta_t s_t(Y_t)}{\sqrt{\alpha_t}} + c_t\Big(Z + \frac{\beta_t}{2}
        \frac{s_t(Y_t + c_t Z) - s_t(Y_t - c_t Z)}{2 c_t}\Big), \quad c_t = \sqrt{\beta_t/\alpha_t}.

    The symmetric difference is odd in Z, so it shifts no mean (docs/papers.md trap (i)); it equals
    :math:`HZ + O(c_t^2)`, an :math:`O(\beta^3)` covariance error.
    """

    state = {}

    def step(t, yy, generator):
        beta, alpha_t, a, s = step_constants(schedule, t)
        c = math.sqrt(beta / alpha_t)
        z = _draw(state, yy, generator)
        s_plus = score(torch.add(yy, z, alpha=c, out=_scratch(state, "plus", yy)), a, s)
        s_minus = score(torch.add(yy, z, alpha=-c, out=_scratch(state, "minus", yy)), a, s)
        # c (z + (beta / 2) hz) = c z + (beta / 4) (s_plus - s_minus), added in place to the mean
        out = tweedie_mean(score, yy, beta, alpha_t, a, s, _iterate(state, t, yy)).add_(z, alpha=c)
        return out.add_(s_plus, alpha=beta / 4).sub_(s_minus, alpha=beta / 4)

    return run_chain(step, schedule, y, generator, **kw)


def one_score_reuse(score: ScoreFn, schedule: DiscreteVP, y, generator=None, *, clip: float = 10.0, **kw):
    r"""One score per step, reusing the previous one (reconstruction of Li & Cai 2024).

    Li & Cai's exact update rule was not available (docs/papers.md: unverified); this is a
    reconstruction in the spirit of the public description (randomness, a momentum-like
    second-order correction from earlier evaluations, clipping). At step t, with
    :math:`Y_t = m_{t+1} + c_{t+1}Z_{t+1}` the previous step's mean plus noise, the one new
    evaluation :math:`s_t(Y_t)` and the previous :math:`s_{t+1}(Y_{t+1})` give the delayed
    covariance correction of the previous step,

    .. math::
        \delta_t = \frac{\beta_{t+1}}{2}\big(s_t(Y_t) - \sqrt{\alpha_{t+1}}\, s_{t+1}(Y_{t+1})\big)
        \approx \frac{\beta_{t+1}}{2} c_{t+1} H Z_{t+1},

    since :math:`s_t(m_{t+1}) = \sqrt{\alpha_{t+1}} s_{t+1}(Y_{t+1})` exactly for Gaussian
    targets (this removes the deterministic drift from the estimate). :math:`\delta_t` is
    clipped to norm :math:`\le` ``clip`` :math:`\cdot \tfrac{\beta_{t+1}}{2} c_{t+1}\sqrt d`, then

    .. math:: Y_t \leftarrow Y_t + \delta_t,\qquad
              Y_{t-1} = (Y_t + \beta_t s_t)/\sqrt{\alpha_t} + c_t Z_t.

    Known departure from a T^-2 scheme: the forward difference is not odd in Z, so the
    correction carries a mean shift :math:`\tfrac{\beta^2}{4}\Delta s` per step (docs/papers.md
    trap (i)); the measured rate is reported, not assumed. The last step's correction
    (which would need an extra evaluation) is not applied.
    """
    prev, state = {}, {}

    def step(t, yy, generator):
        beta, alpha_t, a, s = step_constants(schedule, t)
        st = score(yy, a, s)
        out = torch.add(yy, st, alpha=beta, out=_iterate(state, t, yy))  # the next iterate, (yy + delta + beta st) / sqrt(alpha_t) + c Z below
        if prev:
            # delta = (beta_{t+1} / 2) diff, scaled to norm <= clip (beta_{t+1} / 2) c_{t+1} sqrt(d): the factor
            # min(1, cap / |diff|) = cap / max(|diff|, cap), with no division by a zero norm
            diff = torch.add(st, prev["score"], alpha=-math.sqrt(prev["alpha_t"]), out=_scratch(state, "delta", yy))
            cap = clip * math.sqrt(prev["beta"] / prev["alpha_t"]) * math.sqrt(yy.shape[1])
            out.addcmul_(diff, torch.div(cap, diff.norm(dim=1, keepdim=True).clamp_(min=cap)), value=0.5 * prev["beta"])
        prev.update(beta=beta, alpha_t=alpha_t, score=st)
        c = math.sqrt(beta / alpha_t)
        return out.div_(math.sqrt(alpha_t)).add_(_draw(state, yy, generator), alpha=c)

    return run_chain(step, schedule, y, generator, **kw)


def li_icml2024(score: ScoreFn, schedule: DiscreteVP, y, generator=None, *, first_noise: str = "readme", **kw):
    r"""Accelerated SDE sampler of Li, Huang, Efimov, Wei, Chi & Chen (ICML 2024), the published
    rule (the authors' code, TimofeyEfimov/AcceleratedDiffusionSamplers; docs/papers.md section E):

    .. math:: Y^+ = Y_t + c_t\,Z,\qquad
              Y_{t-1} = (Y^+ + \beta_t s_t(Y^+))/\sqrt{\alpha_t} + \sqrt{\beta_t/2}\,Z',

    :math:`c_t = \sqrt{\beta_t/2}` as in their README (default) or :math:`\sqrt{\alpha_t\beta_t/2}`
    as in their code (``first_noise="code"``); one score per step. The authors claim TV = O(1/T)
    against their O(1/sqrt T) for DDPM; the score at a randomly perturbed point shifts the mean by
    :math:`O(\beta^2)` per step (docs/papers.md trap (i)), so it is first order in T like DDPM.
    """

    return _li_icml2024_chain(score, schedule, y, generator, first_noise=first_noise, **kw)
