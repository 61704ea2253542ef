r"""Exact errors of samplers, and their worst case over families of rotation-invariant targets.

The bounds of the papers hold uniformly over every target with a bounded second moment, so what
tests them is the worst case, not a hand-picked target. Every evaluation here is an exact law
(:func:`exact_error`), so the maximisation over targets is well posed:

* :class:`RadialFamily`: mixtures of up to K Gaussian-smoothed spheres
  (:class:`cmtheory.targets.RadialMixture`) in :math:`\mathbb{R}^d` under the constraints
  :math:`E|X_0|^2/d \le m` and every width :math:`\tau_k \ge \tau_{min} > 0` (a singular target,
  a sphere or a point mass, has TV(Y_0, X_0) = 1 for every sampler, and KL = inf), written as a
  map from unconstrained parameters :math:`\theta \in \mathbb{R}^{3K+1}` onto the feasible set
  (:meth:`RadialFamily.member`), so any derivative-free optimiser searches it;
* :func:`worst_case`: Nelder-Mead (scipy) from the best points of a seeded random design, maximising an error over
  the family; the result names the maximiser, its value and how far the restarts' best values
  spread (restarts that disagree by more than 5% say the search has not converged).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np
import scipy.optimize
import scipy.special

from cmtheory.laws import GridLaw, check_rotation_invariant, gmm_1d_law, radial_cdf, radial_law, richardson_law, uniform_grid
from cmtheory.laws import radius_span as cdf_radius_span
from cmtheory.metrics import Estimate, kl_grid, tv_grid
from cmtheory.processes import DiscreteVP
from cmtheory.samplers import sampler_law_1d, sampler_law_radial, sampler_spec
from cmtheory.targets import GaussianMixture, RadialMixture

__all__ = ["exact_error", "mixture_span", "radius_span", "RadialFamily", "WorstCase", "worst_case"]

#: quantile of the radius (of the target and of N(0, I_d)) left outside a radius grid at each end
RADIUS_TAIL = 1e-12
#: restarts whose best values spread by more than this fraction of the largest have not converged
SPREAD_TOL = 0.05


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
    if not isinstance(target, GaussianMixture) or target.d != 1:
        raise ValueError(f"target must be a 1-D GaussianMixture, got {type(target).__name__} in d = {getattr(target, 'd', '?')}")
    mu = target.means.reshape(-1).double().numpy()
    sd = np.sqrt(target.covs.reshape(len(mu), -1)[:, 0].double().numpy())
    return float(min((mu - n_std * sd).min(), -n_std)), float(max((mu + n_std * sd).max(), n_std))


def radius_span(target) -> tuple[float, float]:
    r"""Radii [lo, hi] holding the radius of a rotation-invariant ``target`` and of N(0, I_d) to within
    :data:`RADIUS_TAIL` at each end (:func:`cmtheory.laws.radius_span` of each; the noisy laws of
    the chain lie between them when the target's components are no wider than N(0, I_d)), widened by 0.5.

    Parameters
    ----------
    target : RadialMixture, GaussianMixture or Sphere
        Rotation-invariant.

    Returns
    -------
    (float, float)
    """
    check_rotation_invariant(target)
    a = cdf_radius_span(lambda r: radial_cdf(target, 1.0, 0.0, r), RADIUS_TAIL)
    b = cdf_radius_span(lambda r: scipy.special.gammainc(target.d / 2, np.asarray(r) ** 2 / 2), RADIUS_TAIL)
    return max(0.0, min(a[0], b[0]) - 0.5), max(a[1], b[1]) + 0.5


def _divergence(metric: str, law, reference) -> Estimate:
    """TV(output, reference) or KL(reference || output) on one grid."""
    if metric == "tv":
        return tv_grid(law, reference)
    return kl_grid(reference, law)


def exact_error(sampler, target, schedule: DiscreteVP, *, metric: str = "tv", cells: int = 1024, start: str = "q_T", richardson: bool = True) -> Estimate:
    r"""The exact error of ``sampler``'s output law against ``target``: TV(output, target) or
    KL(target || output), compared at :math:`X_0`, or at :math:`X_1` with the chain stopped at
    step 1 for a singular target (a sphere: every law is at TV 1 from it).

    In d = 1 on the whole line (a 1-D GaussianMixture, :func:`cmtheory.samplers.sampler_law_1d`);
    otherwise through the radius of a rotation-invariant target
    (:func:`cmtheory.samplers.sampler_law_radial`; TV and KL of rotation-invariant laws are those
    of their radial laws). Grid: :func:`mixture_span` or :func:`radius_span`, cells no wider than
    the last step's noise :math:`\sqrt{\beta_1}`. A Gaussian-transition chain's law is
    Richardson-extrapolated (``richardson``) for TV, whose ``se`` is the law's own error (TV
    between the extrapolated and the 2N-cell law); KL is taken on the 2N-cell law, whose masses are
    >= 0 (the extrapolated law's far tails hold round-off-sized negative masses, which leave
    the KL unresolved where the output's tail is far lighter than the target's), with se
    :math:`|KL_N - KL_{2N}|/3`, Richardson's estimate of its O(h^2) error; the mass lost off the
    grid is added to either. Without ``richardson``, one law on ``cells`` cells (O(h^2), se NaN: the cheap evaluation of a
    search, whose maximiser is then evaluated with it). A map's law is its pushforward, its
    Newton residual the se.

    Parameters
    ----------
    sampler : str, SamplerSpec or callable
        A sampler with an exact law (:func:`cmtheory.samplers.sampler_spec`).
    target : GaussianMixture, RadialMixture or Sphere
        A 1-D mixture or a rotation-invariant target.
    schedule : DiscreteVP
    metric : {"tv", "kl"}
    cells : int
        Cells of the (coarse) grid, at least 16; more where they would be wider than :math:`\sqrt{\beta_1}`.
    start : {"q_T", "normal"}
        The chain's exact law at step T, or N(0, I_d).
    richardson : bool
        Extrapolate a Gaussian-transition chain's law in the cell width.

    Returns
    -------
    Estimate

    Raises
    ------
    ValueError
        A sampler without an exact law, a bad ``metric`` or ``cells``, a target the engines do not take.
    """
    spec = sampler_spec(sampler)
    if spec.exact_law is None:
        raise ValueError("sampler has no exact law (a stochastic sampler without Gaussian transitions)")
    if metric not in ("tv", "kl"):
        raise ValueError(f"metric must be 'tv' or 'kl', got {metric!r}")
    if isinstance(cells, bool) or not isinstance(cells, int) or cells < 16:
        raise ValueError(f"cells must be an int >= 16, got {cells!r}")
    t_stop = 1 if target.singular else 0
    channel = schedule.channel(t_stop) if t_stop else (1.0, 0.0)
    if target.d == 1 and not t_stop and isinstance(target, GaussianMixture):
        lo, hi = mixture_span(target)
        law_fn = lambda e: sampler_law_1d(spec, target, schedule, e, start=start)  # noqa: E731
        reference = lambda e: gmm_1d_law(target, *channel, e)  # noqa: E731
    else:
        lo, hi = radius_span(target)
        law_fn = lambda e: sampler_law_radial(spec, target, schedule, e, start=start, t_stop=t_stop)  # noqa: E731
        reference = lambda e: radial_law(target, *channel, e)  # noqa: E731
    cells = max(cells, int(math.ceil((hi - lo) / math.sqrt(schedule.beta(1)))))
    markov = spec.exact_law == "markov"
    if markov and richardson and metric == "tv":
        law = richardson_law(law_fn, lo, hi, cells)
        est = _divergence(metric, law, reference(law.edges))
        se = float(law.grid_error)
    elif markov and richardson:  # KL on the fine law, whose masses are >= 0, with Richardson's estimate of its error
        ext, law = richardson_law(law_fn, lo, hi, cells, with_fine=True)
        coarse = GridLaw(ext.edges, 4 * (law.masses[0::2] + law.masses[1::2]) - 3 * ext.masses, ext.lost)
        est = _divergence(metric, law, reference(law.edges))
        se = abs(_divergence(metric, coarse, reference(coarse.edges)).value - est.value) / 3
    else:
        law = law_fn(uniform_grid(lo, hi, cells))
        est = _divergence(metric, law, reference(law.edges))
        se = math.nan if markov else float(law.grid_error or 0.0)
    se += law.lost
    how = ("grid law, Richardson" if metric == "tv" else "2N-cell grid law, Richardson error") if markov and richardson else ("grid law, unextrapolated" if markov else "pushforward of the map")
    return Estimate(est.value, se, cells, f"exact {metric.upper()} ({how})", extra=dict(est.extra, lost=law.lost))


@dataclasses.dataclass(frozen=True)
class RadialFamily:
    r"""Mixtures of at most K Gaussian-smoothed spheres in :math:`\mathbb{R}^d` with
    :math:`E|X_0|^2/d \le m` (``moment``), widths :math:`\tau_k \ge \tau_{min}` (``tau_min``) and each
    component's own second moment per coordinate :math:`m_k = r_k^2/d + \tau_k^2 \le M` (``moment_max``:
    a component may carry far more than m at a small weight, heavy tails are in the family, but
    not without bound, which the grids of the exact laws could not hold).

    :meth:`member` maps :math:`\theta = (a, c, b, t) \in \mathbb{R}^{3K+1}` onto the family: weights
    :math:`w = \mathrm{softmax}(a)`; excesses :math:`e_k = u_k\min\big(1, (m - \tau_{min}^2)\sigma(t)/\sum_j w_j u_j\big)`,
    :math:`u_k = (M - \tau_{min}^2)\,\sigma(c_k)`, so that :math:`m_k = \tau_{min}^2 + e_k \le M` and
    :math:`\sum_k w_k m_k \le \tau_{min}^2 + (m - \tau_{min}^2)\sigma(t) \le m` (t sets the total, c the
    components' shares of it, where the bound binds); each excess split by
    :math:`\beta_k = \sigma(b_k)` between the sphere, :math:`r_k^2 = d\beta_k e_k`, and the width,
    :math:`\tau_k^2 = \tau_{min}^2 + (1 - \beta_k)e_k`. With ``spheres=False``, :math:`\beta_k = 0`
    (isotropic Gaussian scale mixtures; b is absent, :math:`\theta \in \mathbb{R}^{2K+1}`).

    Parameters
    ----------
    d : int
        Dimension.
    K : int
        Largest number of components, >= 1.
    tau_min : float
        Smallest width :math:`\tau_{min}`, in (0, sqrt(moment)).
    moment : float
        Bound m > 0 on :math:`E|X_0|^2/d`.
    moment_max : float
        Bound M >= m on each component's second moment per coordinate.
    spheres : bool
        Whether components may have a radius.

    Raises
    ------
    ValueError
        A tau_min <= 0 (singular members: TV(Y_0, X_0) = 1 for every sampler) or >= sqrt(moment)
        (an empty family), a moment_max below moment, or a bad d, K or moment.
    """

    d: int
    K: int = 4
    tau_min: float = 0.1
    moment: float = 1.0
    moment_max: float = 4.0
    spheres: bool = True

    def __post_init__(self):
        for name in ("d", "K"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not (math.isfinite(self.moment) and self.moment > 0):
            raise ValueError(f"moment must be a finite number > 0, got {self.moment!r}")
        if not (math.isfinite(self.tau_min) and 0 < self.tau_min < math.sqrt(self.moment)):
            raise ValueError(f"tau_min must be in (0, sqrt(moment)) = (0, {math.sqrt(self.moment):.4g}): a width of 0 makes members singular "
                             f"(TV(Y_0, X_0) = 1 for every sampler), one of sqrt(moment) leaves no room; got {self.tau_min!r}")
        if not (math.isfinite(self.moment_max) and self.moment_max >= self.moment):
            raise ValueError(f"moment_max must be a finite number >= moment = {self.moment:g}, got {self.moment_max!r}")

    @property
    def dim(self) -> int:
        """Number of parameters: 3K + 1 (2K + 1 without spheres)."""
        return (3 if self.spheres else 2) * self.K + 1

    def member(self, theta) -> RadialMixture:
        r"""The family's member at the unconstrained parameters ``theta`` (class docstring).

        Parameters
        ----------
        theta : array of shape (dim,)
            Finite reals.

        Returns
        -------
        RadialMixture
        """
        theta = np.asarray(theta, dtype=np.float64)
        if theta.shape != (self.dim,) or not np.isfinite(theta).all():
            raise ValueError(f"theta must be a finite array of shape ({self.dim},), got shape {theta.shape}")
        K, f2 = self.K, self.tau_min**2
        w = np.exp(theta[:K] - scipy.special.logsumexp(theta[:K]))
        excess = (self.moment_max - f2) * scipy.special.expit(theta[K : 2 * K])
        excess *= min(1.0, (self.moment - f2) * scipy.special.expit(theta[-1]) / float(w @ excess))
        beta = scipy.special.expit(theta[2 * K : 3 * K]) if self.spheres else np.zeros(K)
        return RadialMixture(self.d, w, np.sqrt(self.d * beta * excess), np.sqrt(f2 + (1 - beta) * excess))

    def check(self, target: RadialMixture) -> None:
        """ValueError naming the constraint that ``target`` breaks (its type, d, number of
        components, a width below tau_min, a radius without spheres, the second moment), each up
        to 1e-9 relative round-off; or a component above ``moment_max``.

        Parameters
        ----------
        target : RadialMixture
        """
        if not isinstance(target, RadialMixture):
            raise ValueError(f"target must be a RadialMixture, got {type(target).__name__}")
        if target.d != self.d or target.K > self.K:
            raise ValueError(f"target must have d = {self.d} and at most K = {self.K} components, got d = {target.d}, K = {target.K}")
        if float(target.widths.min()) < self.tau_min * (1 - 1e-9):
            raise ValueError(f"target has a width {float(target.widths.min()):.4g} below the family's tau_min {self.tau_min:g} (a singular or near-singular member)")
        if not self.spheres and bool((target.radii > 0).any()):
            raise ValueError("target has a sphere component (radius > 0) in a family of Gaussian scale mixtures")
        if target.second_moment > self.moment * (1 + 1e-9):
            raise ValueError(f"target has E|X_0|^2/d = {target.second_moment:.6g} above the family's bound {self.moment:g}")
        own = float((target.radii**2 / self.d + target.widths**2).max())
        if own > self.moment_max * (1 + 1e-9):
            raise ValueError(f"target has a component with second moment per coordinate {own:.6g} above the family's moment_max {self.moment_max:g}")


@dataclasses.dataclass
class WorstCase:
    """The result of :func:`worst_case`.

    Attributes
    ----------
    target : RadialMixture
        The maximiser.
    value : float
        The error there.
    theta : ndarray
        Its parameters (:meth:`RadialFamily.member`).
    restart_values : list of float
        Each restart's best value.
    spread : float
        (max - min) / max of the restarts' best values.
    converged : bool
        spread <= 5%.
    evaluations : int
        Errors evaluated in all.
    unresolved : list of str
        The members where the error was not finite (an exact law that could not resolve it), each
        with its value; they are never the maximiser.
    """

    target: RadialMixture
    value: float
    theta: np.ndarray
    restart_values: list
    spread: float
    converged: bool
    evaluations: int
    unresolved: list = dataclasses.field(default_factory=list)


def worst_case(error: Callable[[RadialMixture], float], family: RadialFamily, *, restarts: int = 4, evaluations: int = 60, design: int | None = None,
               seed: int = 0, step: float = 1.0) -> WorstCase:
    r"""Maximise ``error`` over ``family``: a space-filling design of ``design`` points
    :math:`\theta \sim N(0, 4I)` (seeded; spread enough to reach the family's corners, where the
    sigmoids saturate), then Nelder-Mead (scipy) from its ``restarts`` best points, each with an
    initial simplex of edges ``step`` along the axes and at most ``evaluations`` evaluations. The
    best point seen over all is the maximiser; each restart's best value (the design's points
    count towards none) measures the spread.

    Parameters
    ----------
    error : callable
        ``error(target) -> float``, finite, for a :class:`cmtheory.targets.RadialMixture` of the family.
    family : RadialFamily
    restarts : int
        Nelder-Mead runs, >= 1 (2 or more measure the spread).
    evaluations : int
        Evaluations per run, >= dim + 2 (one simplex and a move).
    design : int, optional
        Points of the initial design, >= restarts (default 2 dim).
    seed : int
        Seed of the design.
    step : float
        Edge of the initial simplex, > 0.

    Returns
    -------
    WorstCase
        ``evaluations`` counts the design's too.

    Raises
    ------
    ValueError
        Bad counts, or an error that is not finite at so many design points that fewer than
        ``restarts`` remain to start from (one named). Elsewhere a non-finite error is counted in
        ``WorstCase.unresolved`` and the point left behind (Nelder-Mead sees it as the worst).
    """
    if not isinstance(family, RadialFamily):
        raise ValueError(f"family must be a RadialFamily, got {type(family).__name__}")
    design = 2 * family.dim if design is None else design
    for name, value, least in (("restarts", restarts, 1), ("evaluations", evaluations, family.dim + 2), ("design", design, restarts)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name} must be an int >= {least}, got {value!r}")
    if not (math.isfinite(step) and step > 0):
        raise ValueError(f"step must be a finite number > 0, got {step!r}")
    seen: list[tuple[float, np.ndarray, int]] = []  # (value, theta, run: -1 for the design) of every finite evaluation
    unresolved: list[str] = []

    def objective(theta: np.ndarray, run: int) -> float:
        target = family.member(theta)
        value = float(error(target))
        if not math.isfinite(value):  # an error the exact law cannot resolve at this member: counted, never a maximiser
            unresolved.append(f"{value} at weights {np.round(target.weights.numpy(), 4).tolist()}, radii {np.round(target.radii.numpy(), 4).tolist()}, "
                              f"widths {np.round(target.widths.numpy(), 4).tolist()}")
            return math.inf
        seen.append((value, theta.copy(), run))
        return -value

    for theta in 2.0 * np.random.default_rng(seed).normal(size=(design, family.dim)):
        objective(theta, -1)
    if len(seen) < restarts:
        raise ValueError(f"error is not finite at {len(unresolved)} of the {design} design points (e.g. error returned {unresolved[0]}): "
                         f"fewer than restarts = {restarts} starts")
    starts = sorted(seen, key=lambda item: -item[0])[:restarts]
    for run, (_, theta0, _) in enumerate(starts):
        simplex = np.vstack([theta0, theta0 + step * np.eye(family.dim)])
        scipy.optimize.minimize(objective, theta0, args=(run,), method="Nelder-Mead",
                                options={"maxfev": evaluations, "initial_simplex": simplex, "xatol": 1e-4, "fatol": 1e-10})
    values = [max((v for v, _, r in seen if r == run), default=-math.inf) for run in range(restarts)]
    top, theta, _ = max(seen, key=lambda item: item[0])
    spread = (top - min(values)) / top if top > 0 else 0.0
    return WorstCase(family.member(theta), top, theta, values, spread, spread <= SPREAD_TOL, len(seen) + len(unresolved), unresolved)
