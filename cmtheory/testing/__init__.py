r"""What a user's own test suite needs to assert that an error rate matches theory.

* :func:`assert_rate` (from :mod:`cmtheory.rates`): a fitted exponent's CI must contain the
  expected one;
* :func:`sampler_rate`: the error of a sampler (a registered name, a
  :class:`~cmtheory.samplers.SamplerSpec`, or a plain deterministic function) against its target,
  fitted as :math:`C T^a` over step counts, or :math:`C d^b` over dimensions of a
  rotation-invariant target: the exact TV where the spec allows (a deterministic map, or Gaussian
  transitions), else Monte Carlo W1 against the target's exact CDF (of the radius in d), with its
  floor; the method is named in the result;
* :func:`exact_tv_rate`: the same, refusing a sampler without an exact law;
* a pytest plugin, :mod:`cmtheory.testing.plugin`, registered under the ``pytest11`` entry point,
  so that installing cmtheory gives every test suite the fixtures ``cmtheory_seed``,
  ``cmtheory_generator``, ``cmtheory_rng``, ``cmtheory_gmm_1d``, ``cmtheory_gaussian``,
  ``cmtheory_exact_tv_rate`` and ``cmtheory_sampler_rate``.

A test a user can copy::

    from cmtheory.testing import assert_rate

    def test_ddpm_is_first_order(cmtheory_gmm_1d, cmtheory_exact_tv_rate):
        fit = cmtheory_exact_tv_rate("ddpm", cmtheory_gmm_1d, Ts=[50, 100, 200])
        assert_rate(fit, "T", -1.0, tol=0.05)
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from cmtheory.laws import gmm_1d_cdf
from cmtheory.metrics import Estimate, w1_radial, w1_to_cdf
from cmtheory.processes import DiscreteVP, linear_schedule
from cmtheory.rates import FitResult, assert_rate, fit_power_law
from cmtheory.samplers import SamplerSpec, sampler_spec
from cmtheory.worst_case import exact_error, mixture_span, radius_span

__all__ = ["assert_rate", "exact_tv_rate", "sampler_rate", "mixture_span", "radius_span"]

def _monte_carlo_error(spec: SamplerSpec, target, schedule: DiscreteVP, start: str, n: int, seed: int) -> Estimate:
    """W1 of n outputs against the target's exact CDF (of the radius in d > 1; X_1's for a sphere),
    with its exact floor."""
    g = torch.Generator().manual_seed(seed)
    t_stop = 1 if target.singular else 0  # a sphere: compared at X_1
    channel = schedule.channel(t_stop) if t_stop else (1.0, 0.0)
    y0 = target.sample_noisy(n, *schedule.channel(schedule.T), g) if start == "q_T" else torch.randn(n, target.d, dtype=torch.float64, generator=g)
    y = spec.run(target.score, schedule, y0, g if spec.kind == "stochastic" else None, hvp=target.hvp, t_stop=t_stop)
    if target.d == 1 and not t_stop:
        return w1_to_cdf(y[:, 0].numpy(), lambda x: gmm_1d_cdf(target, *channel, x), seed=seed)
    return w1_radial(y, target, *channel, seed=seed)


def sampler_rate(sampler, target, Ts: Sequence[int] | None = None, *, ds: Sequence[int] | None = None, T: int | None = None,
                 schedule: Callable[[int], DiscreteVP] = linear_schedule, cells: int = 1024, start: str = "q_T", monte_carlo: bool = True,
                 n: int = 100_000, seed: int = 0) -> FitResult:
    r"""Fit a sampler's error against its target as :math:`C\,T^a` (over ``Ts``) or :math:`C\,d^b`
    (over ``ds`` at ``T`` steps, ``target`` a function of d).

    The error is to the target :math:`X_0`, or to :math:`X_1` with the chain stopped at step 1 on a
    sphere (singular: every law is at TV 1 from it). It is exact where the spec allows: TV of the output law
    (:func:`cmtheory.samplers.sampler_law_1d` for a 1-D mixture,
    :func:`cmtheory.samplers.sampler_law_radial` for a rotation-invariant target in any d), whose
    only uncertainty is the law's own error (the fit's standard error). A stochastic sampler
    without Gaussian transitions is measured by Monte Carlo instead: W1 of ``n`` outputs against the
    target's exact CDF (:func:`cmtheory.metrics.w1_to_cdf`; the radius's,
    :func:`cmtheory.metrics.w1_radial`, in d > 1), with its bootstrap standard error and exact
    floor, points within the floor left out of the fit. ``FitResult.extra["measure"]`` names the method.

    Parameters
    ----------
    sampler : str, SamplerSpec or callable
        A registered name, a spec, or a plain deterministic function ``fn(score, schedule, y, **kw)``.
    target : GaussianMixture, RadialMixture, Sphere, or callable
        A 1-D mixture or a rotation-invariant target (over ``Ts``); ``d -> target`` (over ``ds``).
    Ts : sequence of int, optional
        At least two distinct step counts (exclusive with ``ds``).
    ds : sequence of int, optional
        At least two distinct dimensions, with ``T``.
    T : int, optional
        The step count of a fit over ``ds``.
    schedule : callable
        T -> :class:`cmtheory.processes.DiscreteVP` (default: the linear VP schedule 0.1..20).
    cells : int
        Cells of the coarse grid (the fine one has twice as many); more where its cells would be
        wider than :math:`\sqrt{\beta_1}`, the last step's noise.
    start : {"q_T", "normal"}
        The chain's exact law at step T (isolates discretisation) or N(0, I).
    monte_carlo : bool
        Whether a sampler without an exact law is measured by Monte Carlo (else a ValueError).
    n : int
        Monte Carlo outputs per point.
    seed : int
        Seed of the Monte Carlo draws and bootstrap.

    Returns
    -------
    FitResult
        Exponent ``"T"`` or ``"d"`` with its CI; ``points`` carry the errors; ``extra["measure"]``.

    Raises
    ------
    ValueError
        Bad ``Ts``/``ds``/``T``/``cells``/``n``, a target the engines do not take, or (with
        ``monte_carlo=False``) a sampler without an exact law.
    """
    spec = sampler_spec(sampler)
    if (Ts is None) == (ds is None):
        raise ValueError("give exactly one of Ts (a fit in T) and ds (a fit in d, with T)")
    if isinstance(cells, bool) or int(cells) != cells or cells < 16:
        raise ValueError(f"cells must be an integer >= 16, got {cells!r}")
    if isinstance(n, bool) or int(n) != n or n < 2:
        raise ValueError(f"n must be an integer >= 2, got {n!r}")
    if start not in ("q_T", "normal"):
        raise ValueError(f"start must be 'q_T' or 'normal', got {start!r}")
    if spec.exact_law is None and not monte_carlo:
        raise ValueError("sampler has no exact law (a stochastic sampler without Gaussian transitions): use sampler_rate(..., monte_carlo=True) for a Monte Carlo W1")
    variable, values = ("T", Ts) if Ts is not None else ("d", ds)
    values = [int(v) for v in values]
    if len(set(values)) < 2 or min(values) < 1:
        raise ValueError(f"{variable}s must hold at least two distinct positive integers, got {values}")
    if variable == "d":
        if isinstance(T, bool) or not isinstance(T, int) or T < 1:
            raise ValueError(f"T must be a positive int for a fit over ds, got {T!r}")
        if not callable(target):
            raise ValueError("target must be a function d -> target for a fit over ds")
    cases = [(target, schedule(v)) for v in values] if variable == "T" else [(target(v), schedule(T)) for v in values]
    if spec.exact_law is not None:
        est = [exact_error(spec, tg, sch, cells=cells, start=start) for tg, sch in cases]
        fit = fit_power_law(np.array([e.value for e in est]), se=np.array([e.se for e in est]), **{variable: np.array(values, float)})
    else:
        est = [_monte_carlo_error(spec, tg, sch, start, n, seed + i) for i, (tg, sch) in enumerate(cases)]
        fit = fit_power_law(np.array([e.value for e in est]), se=np.array([e.se for e in est]), floor=np.array([e.floor for e in est]),
                            floor_se=np.array([e.floor_se or 0.0 for e in est]), **{variable: np.array(values, float)})
    fit.extra["measure"] = est[0].method + ("" if spec.exact_law is not None else f", n = {n}")
    return fit


def exact_tv_rate(sampler, target, Ts: Sequence[int], schedule: Callable[[int], DiscreteVP] = linear_schedule, cells: int = 1024, start: str = "q_T") -> FitResult:
    r"""Fit :math:`TV(\text{law of the output}, \text{target}) \approx C\,T^a` from exact laws:
    :func:`sampler_rate` over ``Ts`` with ``monte_carlo=False`` (a sampler without an exact law is
    refused).

    Parameters
    ----------
    sampler : str, SamplerSpec or callable
        A registered name, a spec, or a plain deterministic function.
    target : RadialMixture, GaussianMixture or Sphere
        A 1-D Gaussian mixture, or a rotation-invariant target.
    Ts : sequence of int
        At least two distinct step counts.
    schedule : callable
        T -> :class:`cmtheory.processes.DiscreteVP` (default: the linear VP schedule 0.1..20).
    cells : int
        Cells of the coarse grid.
    start : {"q_T", "normal"}
        Start from the chain's exact law at step T (isolates discretisation) or from N(0, I).

    Returns
    -------
    FitResult
        Exponent ``"T"`` with its CI; ``points`` carry the TVs.
    """
    return sampler_rate(sampler, target, Ts, schedule=schedule, cells=cells, start=start, monte_carlo=False)
