r"""Exact laws of a sampler's output, read off the sampler's own description of its step
(:class:`cmtheory.samplers.SamplerSpec`), never its name.

* A deterministic sampler is a map :math:`\Phi`: its output law is the start law pushed through
  :math:`\Phi` (:func:`cmtheory.laws.pushforward_law`, exact up to the Newton residual it
  reports). On a rotation-invariant target, with the radial score, :math:`\Phi` is
  rotation-equivariant, so in any d the output radius is :math:`|\Phi(R e_1)|` for the start
  radius R (chi_d for N(0, I_d), or the exact radial law of :math:`q_T`).
* A stochastic sampler whose step (or each half-step) is Gaussian given the state gives its
  transitions (``SamplerSpec.transitions``); the 1-D grid engine (:func:`cmtheory.laws.markov_law_1d`)
  and the radial engine (:func:`cmtheory.laws.radial_markov_law`, which reads the radial and
  tangential noise scales off the noise operator) propagate them: O(h^2) in the cell width,
  extrapolated by :func:`cmtheory.laws.richardson_law`.
* Any other stochastic sampler has no exact law: measure it by Monte Carlo against the exact
  reference (:func:`cmtheory.metrics.w1_to_cdf`, :func:`cmtheory.metrics.w1_radial`).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.special
import torch

from cmtheory._checks import chain_steps, check_noise_levels
from cmtheory.laws import (
    GaussianTransition, GridLaw, check_equivariant, check_rotation_invariant, gmm_1d_cdf, gmm_1d_law, markov_law_1d, normal_law,
    pushforward_law, radial_hvp, radial_markov_law, radial_score, radius_span, start_radial_cdf, start_radial_law, uniform_grid,
)
from cmtheory.laws.reference import check_1d_mixture
from cmtheory.processes import DiscreteVP
from cmtheory.samplers.ode import ddim_step
from cmtheory.samplers.registry import SamplerSpec, sampler_spec
from cmtheory.targets import GaussianMixture

__all__ = ["ddim_law_1d", "sampler_law_1d", "sampler_law_radial"]

#: start-grid cells of a pushforward where none are given
START_CELLS = 4096
#: mass of the start law left outside a radial pushforward's start grid at each end
START_TAIL = 1e-16


def _ddim_transition(denoiser, lam, lam_next):
    def transition(y):
        return GaussianTransition(ddim_step(denoiser, y, lam, lam_next), lambda z: 0 * z)

    return transition


def ddim_law_1d(denoiser, lambdas, init: GridLaw) -> GridLaw:
    """Exact law of DDIM's output in EDM variables (a deterministic monotone map per step)."""
    lam = check_noise_levels(lambdas)
    return markov_law_1d(init, (_ddim_transition(denoiser, lam[i], lam[i + 1]) for i in range(len(lam) - 1)))


def _exact_spec(sampler) -> SamplerSpec:
    spec = sampler_spec(sampler)
    if spec.exact_law is None:
        raise ValueError("sampler has no exact law: it is stochastic and its spec gives no Gaussian transitions (SamplerSpec.transitions); "
                         "measure it by Monte Carlo against the exact reference (cmtheory.metrics.w1_to_cdf, cmtheory.metrics.w1_radial)")
    return spec


def _step_transitions(spec: SamplerSpec, score, hvp, schedule: DiscreteVP, t_stop: int, kw: dict):
    """The Gaussian (half-)steps of the chain T, ..., t_stop + 1, in order."""
    steps = chain_steps(schedule, t_stop)
    if spec.needs_hvp and hvp is None:
        raise ValueError("hvp must be given: this sampler's steps use the score's Hessian-vector product")
    return (tr for t in steps for tr in spec.transitions(score, hvp if spec.needs_hvp else None, schedule, t, **kw))


def _map_law(spec: SamplerSpec, score, hvp, schedule: DiscreteVP, start_cdf, start_edges: np.ndarray, edges: np.ndarray, t_stop: int, kw: dict) -> GridLaw:
    """The start law (CDF ``start_cdf``) pushed through the deterministic sampler's map, run on one column."""
    chain_steps(schedule, t_stop)

    def transport(x):
        y = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))[:, None]
        return spec.run(score, schedule, y, hvp=hvp, t_stop=t_stop, **kw)[:, 0].numpy()

    return pushforward_law(transport, start_cdf, np.asarray(start_edges, dtype=np.float64), np.asarray(edges, dtype=np.float64))


def sampler_law_1d(sampler, target: GaussianMixture, schedule: DiscreteVP, edges: np.ndarray, *, start: str = "q_T", score=None, hvp=None, start_edges: np.ndarray | None = None, t_stop: int = 0, **kw) -> GridLaw:
    r"""Exact output law of ``sampler`` on a 1-D Gaussian mixture, on the grid ``edges``.

    Parameters
    ----------
    sampler : str, SamplerSpec or callable
        A registered name (:data:`cmtheory.samplers.SAMPLERS`), a spec, or a plain deterministic
        function ``fn(score, schedule, y, **kw)``: a deterministic sampler, or a stochastic one
        with Gaussian transitions (:attr:`SamplerSpec.exact_law`).
    target : GaussianMixture
        1-D; gives the score (unless ``score`` is given), the HVP and the exact :math:`q_T`.
    schedule : DiscreteVP
    edges : ndarray
        The uniform grid of the output law.
    start : {"q_T", "normal"}
        :math:`Y_T \sim q_T`, the chain's exact law at step T (isolates the discretisation
        error), or N(0, 1) (what a user runs; a deterministic sampler then carries
        TV(N(0, 1), q_T) unchanged).
    score, hvp : callable, optional
        A score and its Hessian-vector product to use in place of ``target.score`` and
        ``target.hvp`` (e.g. :func:`~cmtheory.samplers.scores.controlled_perturbation`'s).
    start_edges : ndarray, optional
        Deterministic samplers: where the map is run first (default: 4096 cells on +-12 start
        standard deviations).
    t_stop : int
        The law of :math:`Y_{t_{stop}}` (compare with the channel of step ``t_stop``); 0 by default.
    **kw
        The sampler's own keywords (e.g. DDPM's ``variance``).

    Returns
    -------
    GridLaw
        Deterministic samplers: :func:`cmtheory.laws.pushforward_law` (exact up to the Newton
        residual it reports in ``grid_error``); stochastic ones: :func:`cmtheory.laws.markov_law_1d`
        (O(h^2), wrap in :func:`cmtheory.laws.richardson_law`).

    Raises
    ------
    ValueError
        A sampler without an exact law, a target that is not a 1-D mixture, a bad ``start``,
        ``schedule`` or ``t_stop``.
    """
    spec = _exact_spec(sampler)
    if start not in ("q_T", "normal"):
        raise ValueError(f"start must be 'q_T' or 'normal', got {start!r}")
    check_1d_mixture(target)
    score = target.score if score is None else score
    hvp = target.hvp if hvp is None else hvp
    chain_steps(schedule, t_stop)
    a_T, s_T = schedule.channel(schedule.T)
    if spec.exact_law == "pushforward":
        if start == "q_T":
            def start_cdf(x):
                return gmm_1d_cdf(target, a_T, s_T, x)
            spread = math.sqrt(a_T**2 * float(target.covariance()[0, 0] + target.means[:, 0].abs().max() ** 2) + s_T**2)
        else:
            start_cdf, spread = scipy.special.ndtr, 1.0
        s_edges = uniform_grid(-12 * spread, 12 * spread, START_CELLS) if start_edges is None else start_edges
        return _map_law(spec, score, hvp, schedule, start_cdf, s_edges, edges, t_stop, kw)
    transitions = _step_transitions(spec, score, hvp, schedule, t_stop, kw)
    init = gmm_1d_law(target, a_T, s_T, edges) if start == "q_T" else normal_law(0.0, 1.0, edges)
    return markov_law_1d(init, transitions)


def sampler_law_radial(sampler, target, schedule: DiscreteVP, edges: np.ndarray, *, start: str = "q_T", t_stop: int = 0, start_edges: np.ndarray | None = None, **kw) -> GridLaw:
    r"""Exact law of the radius :math:`|Y_{t_{stop}}|` of ``sampler``'s output on a rotation-invariant
    target in :math:`\mathbb{R}^d`, run with the target's exact (radial) score.

    TV and :math:`W_p` between rotation-invariant laws equal TV and :math:`W_p` between their
    radial laws (:mod:`cmtheory.laws.radial`), so compare with :func:`cmtheory.laws.radial_law`.

    * Deterministic: on a rotation-invariant target the sampler's map :math:`\Phi` is
      rotation-equivariant (checked, :func:`cmtheory.laws.check_equivariant`), so the output radius
      is :math:`|\Phi(R e_1)|`, R the start radius: the start's radial law pushed through
      :math:`r \mapsto \Phi(r e_1)_1`, run on one column with :func:`cmtheory.laws.radial_score`
      (:func:`cmtheory.laws.pushforward_law`: exact up to the Newton residual in ``grid_error``).
    * Stochastic with Gaussian transitions: :func:`cmtheory.laws.radial_markov_law` on the plane
      of the radius and one tangential direction (the transitions on :func:`cmtheory.laws.radial_score`
      and :func:`cmtheory.laws.radial_hvp`); O(h^2), wrap in :func:`cmtheory.laws.richardson_law`.

    Parameters
    ----------
    sampler : str, SamplerSpec or callable
        As in :func:`sampler_law_1d`.
    target : RadialMixture, GaussianMixture or Sphere
        Rotation-invariant (:func:`cmtheory.laws.check_rotation_invariant`).
    schedule : DiscreteVP
    edges : ndarray
        Uniform radius grid starting at 0 or above (:func:`cmtheory.laws.uniform_grid`).
    start : {"q_T", "normal"}
        :math:`Y_T \sim q_T` (the chain's exact law at step T) or N(0, I_d) (what a user runs).
    t_stop : int
        Return the law of :math:`|Y_{t_{stop}}|` (compare with :func:`cmtheory.laws.radial_law`
        at the channel of step ``t_stop``).
    start_edges : ndarray, optional
        Deterministic samplers: the start radii where the map is run first (default: 4096 cells
        between the start law's 1e-16 and 1 - 1e-16 quantiles).
    **kw
        The sampler's own keywords.

    Returns
    -------
    GridLaw
        The radial law.

    Raises
    ------
    ValueError
        A sampler without an exact law, a step that is not rotation-equivariant, a target that
        is not rotation-invariant, a bad ``edges``, ``start``, ``schedule`` or ``t_stop``.
    """
    spec = _exact_spec(sampler)
    check_rotation_invariant(target)
    edges = np.asarray(edges, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 3 or edges[0] < 0 or not np.all(np.diff(edges) > 0):
        raise ValueError(f"edges must be an increasing radius grid starting at 0 or above, got {edges.size} edges from {edges[:1]}")
    chain_steps(schedule, t_stop)
    score, hvp = radial_score(target), radial_hvp(target)
    if spec.exact_law == "pushforward":
        start_cdf = start_radial_cdf(target, schedule, start)
        s_edges = uniform_grid(*radius_span(start_cdf, START_TAIL), START_CELLS) if start_edges is None else np.asarray(start_edges, dtype=np.float64)
        radii = np.quantile(s_edges[s_edges > 0], [0.25, 0.5, 0.75])
        check_equivariant(lambda x: spec.run(score, schedule, x, hvp=hvp, t_stop=t_stop, **kw), radii, target.d)
        _check_one_column(spec, target, schedule, radii, t_stop, kw)
        return _map_law(spec, score, hvp, schedule, start_cdf, s_edges, edges, t_stop, kw)
    init = start_radial_law(target, schedule, edges, start)
    return radial_markov_law(init, _step_transitions(spec, score, hvp, schedule, t_stop, kw), target.d)


def _check_one_column(spec: SamplerSpec, target, schedule: DiscreteVP, radii: np.ndarray, t_stop: int, kw: dict, rtol: float = 1e-8) -> None:
    """ValueError unless the map run on the points r e_1 in R^d with the target's own score equals
    the map run on the first column alone with the radial score (what the pushforward runs): a map
    that reads d off its input (a step scaled by sqrt(d), say) would be pushed forward wrongly."""
    x = torch.zeros(len(radii), target.d, dtype=torch.float64)
    x[:, 0] = torch.as_tensor(radii)
    full = spec.run(target.score, schedule, x, hvp=target.hvp, t_stop=t_stop, **kw)
    one = spec.run(radial_score(target), schedule, x[:, :1].clone(), hvp=radial_hvp(target), t_stop=t_stop, **kw)
    gap = float(max((full[:, :1] - one).abs().max(), full[:, 1:].abs().max() if target.d > 1 else 0.0))
    if not gap <= rtol * max(1.0, float(one.abs().max())):
        raise ValueError(f"sampler: its map in R^{target.d} differs from its map on the radius alone by {gap:.3g} at radii {np.round(radii, 4).tolist()} "
                         "(a map that depends on d other than through the score, or not along the radius): the radial pushforward does not apply")
