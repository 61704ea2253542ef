r"""What a user's own test suite needs to assert that an error rate matches theory.

* :func:`assert_rate` (from :mod:`cmtheory.rates`): a fitted exponent's CI must contain the
  expected one;
* :func:`exact_tv_rate`: the exact TV of a registered sampler's output law against its target, for
  a range of step counts T, fitted as :math:`TV \approx C T^a` (no Monte Carlo: the laws are
  computed on a Richardson-extrapolated grid, so the only uncertainty is the grid's);
* a pytest plugin, :mod:`cmtheory.testing.plugin`, registered under the ``pytest11`` entry point,
  so that installing cmtheory gives every test suite the fixtures ``cmtheory_seed``,
  ``cmtheory_generator``, ``cmtheory_rng``, ``cmtheory_gmm_1d``, ``cmtheory_gaussian`` and
  ``cmtheory_exact_tv_rate``.

A test a user can copy::

    from cmtheory.testing import assert_rate

    def test_ddpm_is_first_order(cmtheory_gmm_1d, cmtheory_exact_tv_rate):
        fit = cmtheory_exact_tv_rate("ddpm", cmtheory_gmm_1d, Ts=[50, 100, 200])
        assert_rate(fit, "T", -1.0, tol=0.05)
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from cmtheory.metrics.tv import tv_grid
from cmtheory.processes import DiscreteVP, linear_schedule
from cmtheory.rates import FitResult, assert_rate, fit_power_law
from cmtheory.laws import gmm_1d_law, richardson_law, uniform_grid
from cmtheory.samplers.exact_laws import sampler_law_1d
from cmtheory.targets import GaussianMixture

__all__ = ["assert_rate", "exact_tv_rate", "mixture_span"]


def mixture_span(target: GaussianMixture, n_std: float = 8.0) -> tuple[float, float]:
    r"""A 1-D interval holding a 1-D mixture and the standard normal start to within
    :math:`\Phi(-n_{std})` of mass: :math:`[\min_k(\mu_k - n\,s_k), \max_k(\mu_k + n\,s_k)]`
    widened to contain :math:`[-n, n]`.

    Parameters
    ----------
    target : GaussianMixture
        A mixture in d = 1.
    n_std : float
        Standard deviations kept on each side (8: the mass outside is below 1e-15).

    Returns
    -------
    (float, float)
    """
    if target.d != 1:
        raise ValueError(f"target must be a 1-D GaussianMixture, got d = {target.d}")
    mu = target.means.reshape(-1).double().numpy()
    sd = np.sqrt(target.covs.reshape(len(mu), -1)[:, 0].double().numpy())
    return float(min((mu - n_std * sd).min(), -n_std)), float(max((mu + n_std * sd).max(), n_std))


def exact_tv_rate(sampler: str, target: GaussianMixture, Ts: Sequence[int], schedule: Callable[[int], DiscreteVP] = linear_schedule, cells: int = 1024, start: str = "q_T") -> FitResult:
    r"""Fit :math:`TV(\text{law of the output}, \text{target}) \approx C\,T^a` from exact laws.

    For each T the output law of ``sampler`` run with the exact score of a 1-D ``target`` is
    computed on a grid of ``cells`` cells spanning :func:`mixture_span` and Richardson-extrapolated
    (:func:`cmtheory.laws.richardson_law`); TV against the target's law on the
    same grid is exact up to the grid error, which the fit takes as the standard error.

    Parameters
    ----------
    sampler : str
        A name in :data:`cmtheory.samplers.exact_laws.EXACT_LAW_SAMPLERS`.
    target : GaussianMixture
        A 1-D Gaussian mixture.
    Ts : sequence of int
        At least two distinct step counts.
    schedule : callable
        T -> :class:`cmtheory.processes.DiscreteVP` (default: the linear VP schedule 0.1..20).
    cells : int
        Cells of the coarse grid (the fine one has twice as many).
    start : {"q_T", "normal"}
        Start from the chain's exact law at step T (isolates discretisation) or from N(0, 1).

    Returns
    -------
    FitResult
        Exponent ``"T"`` with its CI; ``points`` carry the TVs.
    """
    Ts = [int(T) for T in Ts]
    if len(set(Ts)) < 2 or min(Ts) < 1:
        raise ValueError(f"Ts must hold at least two distinct positive step counts, got {Ts}")
    if int(cells) != cells or cells < 16:
        raise ValueError(f"cells must be an integer >= 16, got {cells!r}")
    lo, hi = mixture_span(target)
    reference = gmm_1d_law(target, 1.0, 0.0, uniform_grid(lo, hi, cells))
    tv = [tv_grid(richardson_law(lambda e: sampler_law_1d(sampler, target, schedule(T), e, start=start), lo, hi, cells), reference) for T in Ts]
    return fit_power_law(np.array([e.value for e in tv]), se=np.array([e.se for e in tv]), T=np.array(Ts, float))
