r"""Gaussian transition kernels of the stochastic samplers: the law of one step given the state.

A step :math:`Y' = m(Y) + M(Y) Z` is held as ``GaussianTransition(mean, noise)``, ``noise``
linear in Z. The samplers (:mod:`cmtheory.samplers.stochastic`) draw from these kernels, and
the exact-law engines (:mod:`cmtheory.laws.grid`, :mod:`cmtheory.laws.radial`) propagate laws
through the very same formulas.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple, Sequence

import torch

from cmtheory.processes import DiscreteVP

__all__ = [
    "ScoreFn", "HvpFn", "GaussianTransition", "StepTransitions", "step_constants", "tweedie_mean", "ddpm_transition",
    "exact_covariance_transition", "ddpm_transitions", "exact_covariance_transitions", "li_icml2024_transitions",
]

#: ``score(x, alpha, sigma) -> (n, d)``
ScoreFn = Callable[[torch.Tensor, object, object], torch.Tensor]
#: ``hvp(x, v, alpha, sigma) -> (n, d)``, the Hessian of log q applied to v
HvpFn = Callable[[torch.Tensor, torch.Tensor, object, object], torch.Tensor]


#: ``transitions(score, hvp, schedule, t, **kw) -> sequence of maps y -> GaussianTransition``: the
#: Gaussian half-steps of step t of a stochastic sampler, in order (a map may take ``out=``, a buffer
#: for its mean); ``hvp`` is None for a sampler that needs none, ``kw`` the sampler's own keywords
StepTransitions = Callable[..., Sequence[Callable[..., "GaussianTransition"]]]


class GaussianTransition(NamedTuple):
    """One Gaussian step: Y' = mean + noise(Z), ``noise`` linear in Z; ``scale`` is set when
    noise(Z) = scale Z, so that a sampler adds scale Z in one in-place pass."""

    mean: torch.Tensor
    noise: Callable[[torch.Tensor], torch.Tensor]
    scale: float | None = None


def _scaled_noise(mean: torch.Tensor, c: float) -> GaussianTransition:
    """The transition Y' = mean + c Z."""
    return GaussianTransition(mean, lambda z: c * z, c)


def step_constants(schedule: DiscreteVP, t: int):
    r""":math:`(\beta_t, \alpha_t = 1-\beta_t)` and the channel :math:`(\sqrt{\bar\alpha_t}, \sqrt{1-\bar\alpha_t})` of step t."""
    beta = schedule.beta(t)
    a, s = schedule.channel(t)
    return beta, 1 - beta, a, s


def tweedie_mean(score: ScoreFn, y: torch.Tensor, beta: float, alpha_t: float, a, s, out: torch.Tensor | None = None) -> torch.Tensor:
    r""":math:`(y + \beta_t s_t(y))/\sqrt{\alpha_t}` in two passes over (n, d), a new tensor or written into ``out``."""
    return torch.add(y, score(y, a, s), alpha=beta, out=out).div_(math.sqrt(alpha_t))


def ddpm_transition(score: ScoreFn, schedule: DiscreteVP, t: int, y: torch.Tensor, variance: str = "beta", out: torch.Tensor | None = None) -> GaussianTransition:
    r"""DDPM step t: mean :math:`(y + \beta_t s_t(y))/\sqrt{\alpha_t}` (a new tensor, or written into
    ``out``), noise :math:`\sqrt{v_t} Z`.

    ``variance="beta"``: :math:`v_t = \beta_t` (Li & Yan); ``"posterior"``:
    :math:`v_t = \beta_t(1-\bar\alpha_{t-1})/(1-\bar\alpha_t)` (Ho et al.'s :math:`\tilde\beta_t`).
    """
    beta, alpha_t, a, s = step_constants(schedule, t)
    if variance == "beta":
        v = beta
    elif variance == "posterior":
        abar = schedule.abar
        v = beta * float((1 - abar[t - 1]) / (1 - abar[t]))
    else:
        raise ValueError(f"variance must be 'beta' or 'posterior', got {variance!r}")
    return _scaled_noise(tweedie_mean(score, y, beta, alpha_t, a, s, out), math.sqrt(v))


def exact_covariance_transition(score: ScoreFn, hvp: HvpFn, schedule: DiscreteVP, t: int, y: torch.Tensor, out: torch.Tensor | None = None) -> GaussianTransition:
    r"""Exact-covariance step t: mean :math:`(y + \beta_t s_t(y))/\sqrt{\alpha_t}`, noise
    :math:`\sqrt{\beta_t/\alpha_t}\,(z + \tfrac{\beta_t}{2} H_t(y) z)`, H the Hessian of
    :math:`\log q_t` through ``hvp(y, z, alpha, sigma)``. The mean is a new tensor, or written into ``out``.

    :math:`(I + \tfrac{\beta}{2}H)^2 = I + \beta H + O(\beta^2)`, and the square root of the
    exact covariance :math:`(\beta/\alpha)(I + \beta H)` agrees with it to :math:`O(\beta^2)`
    inside, i.e. :math:`O(\beta^3)` for the covariance.
    """
    beta, alpha_t, a, s = step_constants(schedule, t)
    mean = tweedie_mean(score, y, beta, alpha_t, a, s, out)
    c = math.sqrt(beta / alpha_t)
    return GaussianTransition(mean, lambda z: c * (z + 0.5 * beta * hvp(y, z, a, s)))


def li_icml2024_transitions(score: ScoreFn, hvp: HvpFn | None, schedule: DiscreteVP, t: int, first_noise: str = "readme") -> tuple:
    r"""The two Gaussian half-steps of the ICML 2024 stochastic sampler at step t.

    First :math:`Y^+ = Y_t + c\,Z` (identity mean, constant noise), then
    :math:`Y_{t-1} = (Y^+ + \beta_t s_t(Y^+))/\sqrt{\alpha_t} + \sqrt{\beta_t/2}\,Z'`, with
    :math:`c = \sqrt{\beta_t/2}` (``first_noise="readme"``, the authors' README) or
    :math:`c = \sqrt{\alpha_t\beta_t/2}` (``"code"``, their ``denoising.py``);
    :math:`\alpha_t = 1 - \beta_t`. Returned as two transition maps ``y -> GaussianTransition``
    (the second writes its mean into ``out`` when given) so that the sampler and its exact law
    (:mod:`cmtheory.laws`) share them; ``hvp`` is not used (the :data:`StepTransitions` signature).
    """
    if first_noise not in ("readme", "code"):
        raise ValueError(f"first_noise must be 'readme' or 'code', got {first_noise!r}")
    beta, alpha_t, a, s = step_constants(schedule, t)
    c = math.sqrt(beta / 2 * (alpha_t if first_noise == "code" else 1.0))
    c2 = math.sqrt(beta / 2)

    def perturb(y, out=None):  # the mean is y itself: the sampler adds the noise into a buffer of its own
        return _scaled_noise(y, c)

    def tweedie(y, out=None):
        return _scaled_noise(tweedie_mean(score, y, beta, alpha_t, a, s, out), c2)

    return perturb, tweedie


def ddpm_transitions(score: ScoreFn, hvp: HvpFn | None, schedule: DiscreteVP, t: int, variance: str = "beta") -> tuple:
    r"""Step t of DDPM as :data:`StepTransitions`: the one transition :func:`ddpm_transition`
    (``hvp`` is not used)."""
    return (lambda y, out=None: ddpm_transition(score, schedule, t, y, variance, out),)


def exact_covariance_transitions(score: ScoreFn, hvp: HvpFn, schedule: DiscreteVP, t: int) -> tuple:
    r"""Step t of the exact-covariance sampler as :data:`StepTransitions`: the one transition
    :func:`exact_covariance_transition`."""
    return (lambda y, out=None: exact_covariance_transition(score, hvp, schedule, t, y, out),)
