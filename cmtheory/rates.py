r"""Power-law rate fits, steps-to-eps, and verdicts against the papers' bounds.

A fit of :math:`\mathrm{err} \approx C\,\prod_v x_v^{a_v}` (one variable, e.g. T, or several,
e.g. T and d) is a weighted least-squares line in log space. Uncertainty:

* replicates (several rows with the same design point, e.g. seeds): a fit of the log of
  the replicate means, weighted by replicate count, with a cluster bootstrap resampling the
  replicates within each point (small-sample corrected by :math:`\sqrt{k/(k-1)}`); CI from
  the bootstrap standard error and a Student-t quantile with the pooled within-point
  degrees of freedom;
* one value per point with a standard error: parametric bootstrap in log space
  (:math:`\log y^* = \log y + (se/y) Z`), weights :math:`(y/se)^2`, inflated by the Birge
  ratio :math:`\sqrt{\chi^2_{red}}` when the points scatter more than their errors say;
* neither: ordinary least squares with a Student-t CI.

Points at the estimator's noise floor (value within ``z`` combined standard errors of
the floor) are excluded and listed in ``FitResult.excluded``, never dropped silently.

A fit is judged twice: :func:`verdict` places the exponent's CI against the bound's exponent
and the band its log factors add ("rate observed" only when the bound's exponent itself is in
the CI), and :func:`asymptotic_regime` asks whether the local slopes still drift across the
fitted range ("not yet asymptotic": the fitted exponent is a range average, not a limit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.optimize
import scipy.stats

__all__ = [
    "FitResult",
    "Regime",
    "fit_power_law",
    "fit_two_terms",
    "two_terms_predict",
    "steps_to_eps",
    "log_slack",
    "steps_log_slack",
    "verdict",
    "asymptotic_regime",
    "assert_rate",
    "VERDICTS",
    "REGIMES",
]

#: The verdicts of :func:`verdict` with their meanings (paper_checks.md prints this glossary).
VERDICTS = {
    "rate observed": "the bound's exponent itself lies in the measured exponent's CI, with no slack for log factors",
    "consistent with the bound (log factors)": "the CI lies above the bound's exponent e but meets the band [e, e + s] that the bound's log factors add over the fitted range (s = log_slack): the bound holds, its power law itself was not seen",
    "faster than the bound": "the CI lies below the bound's exponent: the error falls faster in T or n (or grows slower in d) than the bound's rate, as an upper bound allows",
    "violates the bound": "the CI lies above the band [e, e + s]: the error falls slower (or grows faster) than the bound allows even with its log factors",
    "inconclusive (CI too wide)": "the CI is wider than 0.5 and meets the band [e, e + s]: the data cannot place the exponent against the bound",
}
#: The verdicts of :func:`asymptotic_regime` with their meanings.
REGIMES = {
    "asymptotic (local slopes stable)": "the CI of the drift of the local slope (per unit ln T or ln n) lies within +-tol: the fitted exponent is the local one across the range",
    "not yet asymptotic": "the drift's CI excludes 0 and the drift exceeds tol: the local slope still moves across the range, so the fitted exponent is a range average, not the limit",
    "undetermined (drift CI too wide)": "the drift's CI is too wide to tell a stable slope from a drifting one",
}


@dataclass(frozen=True)
class FitResult:
    """A power-law fit.

    Attributes
    ----------
    exponents : dict
        Fitted exponent of each variable.
    ci : dict
        (lo, hi) confidence interval of each exponent at ``level``.
    log_prefactor : float
        log C.
    level : float
        Confidence level of ``ci``.
    method : str
        "cluster bootstrap", "parametric bootstrap" or "ols".
    points : list of dict
        Every input point (variables, y, se, floor) with ``used`` and, if excluded, ``reason``.
    chi2_red : float or None
        Reduced chi-square of the weighted fit (None without standard errors).
    extra : dict
        Further fitted constants of a model beyond a power law (:func:`fit_two_terms`: ``log_C2``).
    """

    exponents: dict
    ci: dict
    log_prefactor: float
    level: float
    method: str
    points: list = field(default_factory=list)
    chi2_red: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def excluded(self) -> list:
        """The points left out of the fit, with their reasons."""
        return [p for p in self.points if not p["used"]]

    def predict(self, **variables) -> np.ndarray:
        """C prod x_v^a_v at the given variable values."""
        out = self.log_prefactor
        for name, a in self.exponents.items():
            out = out + a * np.log(np.asarray(variables[name], dtype=np.float64))
        return np.exp(out)

    def summary(self, variable: str | None = None) -> str:
        """One line per exponent: value [lo, hi] (method, points used/total)."""
        names = [variable] if variable else list(self.exponents)
        used = sum(p["used"] for p in self.points)
        parts = [f"{v}: {self.exponents[v]:+.3f} [{self.ci[v][0]:+.3f}, {self.ci[v][1]:+.3f}]" for v in names]
        return f"{'; '.join(parts)} ({self.method}, {self.level:.0%} CI, {used}/{len(self.points)} points used)"


def _as_1d(a, name, n=None):
    arr = np.asarray(a, dtype=np.float64).ravel()
    if n is not None and arr.size != n:
        raise ValueError(f"{name} must have {n} entries, got {arr.size}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def _wls_operator(X, w):
    """(X^T W X)^{-1} X^T W: maps log-y vectors to coefficients."""
    Xw = X * w[:, None]
    return np.linalg.solve(X.T @ Xw, Xw.T)


@dataclass(frozen=True)
class _Design:
    """Validated fit data: rows grouped by design point, floor-dominated groups excluded."""

    names: list
    y: np.ndarray  # (m,) all rows
    se: np.ndarray | None
    keys: np.ndarray  # (G, v) distinct design points
    group: np.ndarray  # (m,) group of each row
    used: np.ndarray  # indices of the groups used
    points: list
    replicated: bool


def _prepare(y, se, floor, floor_se, z_floor, variables) -> _Design:
    """Validate, group replicates, and exclude non-positive and floor-dominated points."""
    if not variables:
        raise ValueError("give at least one variable, e.g. fit_power_law(err, T=Ts)")
    yv = _as_1d(y, "y")
    m = yv.size
    if m == 0:
        raise ValueError("y is empty: there is nothing to fit")
    names = list(variables)
    V = np.stack([_as_1d(variables[k], k, m) for k in names], 1)
    if (V <= 0).any():
        raise ValueError("variables must be > 0 (the fit is in log space)")
    sev = None if se is None else _as_1d(se, "se", m)
    fl = None if floor is None else _as_1d(floor, "floor", m)
    fl_se = np.zeros(m) if floor_se is None else _as_1d(floor_se, "floor_se", m)
    if sev is not None and (sev < 0).any():
        raise ValueError("se must be >= 0")

    # group replicates: rows with the same design point
    keys, group = np.unique(V, axis=0, return_inverse=True)
    group = group.ravel()
    replicated = np.bincount(group).max() > 1

    points = [{**{k: float(V[i, j]) for j, k in enumerate(names)}, "y": float(yv[i]), "used": True} for i in range(m)]
    for i, p in enumerate(points):
        if sev is not None:
            p["se"] = float(sev[i])
        if fl is not None:
            p["floor"] = float(fl[i])

    # exclusion: non-positive values, floor-dominated points (judged on group means)
    ok_group = np.ones(keys.shape[0], dtype=bool)
    reason = {}
    for g in range(keys.shape[0]):
        rows = np.flatnonzero(group == g)
        ybar = yv[rows].mean()
        if ybar <= 0:
            ok_group[g], reason[g] = False, "non-positive value"
            continue
        if fl is not None:
            if replicated and rows.size > 1:
                s = yv[rows].std(ddof=1) / math.sqrt(rows.size)
            else:
                s = float(np.sqrt(np.mean(sev[rows] ** 2))) if sev is not None else 0.0
            spread = math.sqrt(s**2 + float(np.mean(fl_se[rows] ** 2)))
            if ybar - fl[rows].mean() <= z_floor * spread:
                ok_group[g], reason[g] = False, f"at noise floor (y - floor <= {z_floor} x combined se)"
    for i in range(m):
        if not ok_group[group[i]]:
            points[i]["used"], points[i]["reason"] = False, reason[group[i]]
    used = np.flatnonzero(ok_group)
    if used.size < len(names) + 1:
        raise ValueError(f"too few usable points: {used.size} (need > {len(names)}); excluded: {reason}")
    return _Design(names, yv, sev, keys, group, used, points, replicated)


def _check_fit_options(level: float, n_boot: int, z_floor: float) -> None:
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise ValueError(f"level must be a confidence level strictly between 0 and 1, got {level!r}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 100:
        raise ValueError(f"n_boot must be an int >= 100 (a bootstrap CI from fewer draws is noise), got {n_boot!r}")
    if not (isinstance(z_floor, (int, float)) and math.isfinite(z_floor) and z_floor >= 0):
        raise ValueError(f"z_floor must be a finite number >= 0, got {z_floor!r}")


def _check_identifiable(X: np.ndarray, names: list) -> None:
    """The exponents are identifiable: no variable constant over the used points, no two
    collinear in log space (named in the error)."""
    logs = X[:, 1 : 1 + len(names)]
    for j, name in enumerate(names):
        if np.ptp(logs[:, j]) == 0:
            raise ValueError(f"variable {name!r} takes a single value over the used points: its exponent cannot be fitted")
    if np.linalg.matrix_rank(X) < X.shape[1]:
        centred = logs - logs.mean(0)
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                pair = centred[:, [i, j]]
                if np.linalg.matrix_rank(pair) < 2:
                    raise ValueError(f"variables {names[i]!r} and {names[j]!r} are collinear in log space over the used points: their exponents cannot be told apart")
        raise ValueError(f"the variables {names} are linearly dependent in log space over the used points: their exponents cannot be told apart")


def _estimate(data: _Design, X: np.ndarray, level: float, n_boot: int, seed: int):
    """Coefficients of the log-linear model ``log y = X @ coef`` (one row of X per used design
    point) with their CIs: (coef, lo, hi, method, chi2_red)."""
    used = data.used
    alpha = 1 - level
    rng = np.random.default_rng(seed)
    if data.replicated:
        members = [data.y[data.group == g] for g in used]
        ybar = np.array([mm.mean() for mm in members])
        # weights from the pooled relative error (per-point errors from a few replicates are
        # too noisy to weight by: the bootstrap holds weights fixed, and coverage suffers)
        P = _wls_operator(X, np.array([mm.size for mm in members], dtype=np.float64))
        coef = P @ np.log(ybar)
        boot_means = np.empty((n_boot, used.size))
        for j, mm in enumerate(members):
            k = mm.size
            draws = mm[rng.integers(0, k, (n_boot, k))].mean(1)
            boot_means[:, j] = ybar[j] + (draws - ybar[j]) * (math.sqrt(k / (k - 1)) if k > 1 else 1.0)
        boot = np.log(np.maximum(boot_means, 1e-300)) @ P.T
        # bootstrap standard error with a Student-t quantile on the pooled within-point degrees
        # of freedom (percentile intervals undercover with a handful of replicates per point)
        half = scipy.stats.t.ppf(1 - alpha / 2, max(sum(mm.size - 1 for mm in members), 1)) * boot.std(axis=0, ddof=1)
        return coef, coef - half, coef + half, "cluster bootstrap", None
    rows = np.array([np.flatnonzero(data.group == g)[0] for g in used])  # one row per point
    ly = np.log(data.y[rows])
    if data.se is not None:
        s_log = data.se[rows] / data.y[rows]
        if (s_log <= 0).any():
            raise ValueError("se must be > 0 at every used point for a weighted fit")
        w = 1 / s_log**2
        if not (np.isfinite(w).all() and w.min() > w.max() * 1e-12):
            raise ValueError(f"the relative errors se/y of the used points span {s_log.min():.3g} to {s_log.max():.3g}: too far apart (or too close to 0) for a weighted fit; check se")
        P = _wls_operator(X, w)
        coef = P @ ly
        resid = ly - X @ coef
        chi2_red = float((w * resid**2).sum() / max(used.size - X.shape[1], 1))
        boot = (ly + math.sqrt(max(1.0, chi2_red)) * s_log * rng.standard_normal((n_boot, ly.size))) @ P.T
        lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2], axis=0)
        return coef, lo, hi, "parametric bootstrap", chi2_red
    coef, *_ = np.linalg.lstsq(X, ly, rcond=None)
    dof = used.size - X.shape[1]
    if dof < 1:
        raise ValueError("an unweighted fit needs more points than parameters + 1 for a CI")
    resid = ly - X @ coef
    cov = (resid @ resid / dof) * np.linalg.inv(X.T @ X)
    half = scipy.stats.t.ppf(1 - alpha / 2, dof) * np.sqrt(np.maximum(np.diag(cov), 0.0))  # exact fits: round-off can go below 0
    return coef, coef - half, coef + half, "ols", None


def fit_power_law(
    y,
    *,
    se=None,
    floor=None,
    floor_se=None,
    z_floor: float = 2.0,
    level: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
    **variables,
) -> FitResult:
    r"""Fit :math:`y \approx C\prod_v x_v^{a_v}` with CIs on the exponents.

    Parameters
    ----------
    y : array of shape (m,)
        Positive errors.
    se : array of shape (m,), optional
        Standard errors of y.
    floor, floor_se : arrays of shape (m,), optional
        The estimator's noise floor at each point; points with
        ``y - floor <= z_floor * sqrt(se^2 + floor_se^2)`` are excluded (reported).
    level : float
        Confidence level.
    n_boot : int
        Bootstrap replicates.
    seed : int
        Seed of the bootstrap.
    **variables : arrays of shape (m,)
        The variables, e.g. ``T=Ts`` or ``T=Ts, d=ds``; positive.

    Returns
    -------
    FitResult
    """
    _check_fit_options(level, n_boot, z_floor)
    data = _prepare(y, se, floor, floor_se, z_floor, variables)
    X = np.column_stack([np.ones(data.used.size), np.log(data.keys[data.used])])
    _check_identifiable(X, data.names)
    coef, lo, hi, method, chi2_red = _estimate(data, X, level, n_boot, seed)
    names = data.names
    ci = {k: (float(lo[j + 1]), float(hi[j + 1])) for j, k in enumerate(names)}
    return FitResult({k: float(coef[j + 1]) for j, k in enumerate(names)}, ci, float(coef[0]), level, method, data.points, chi2_red)


def fit_two_terms(y, T, eps, level: float = 0.95) -> FitResult:
    r"""Fit the additive model of a bound with a discretisation and a score term,
    :math:`y \approx C_1 T^a + C_2\,\epsilon^b`, by nonlinear least squares on :math:`\log y`.

    Points with :math:`\epsilon = 0` carry the first term alone. The CIs are Wald intervals
    from the Gauss-Newton covariance :math:`s^2 (J^TJ)^{-1}` with Student's t on m - 4 degrees
    of freedom (the model is fitted on the log scale, so a constant relative error per
    point). Returns a :class:`FitResult` with ``exponents = {"T": a, "eps": b}``,
    ``log_prefactor`` = log C1 and ``extra["log_C2"]``; its ``predict`` is not the model's
    (it would multiply the terms), use :func:`two_terms_predict`.

    Both terms must matter somewhere on the grid, or the model is not identifiable: a
    ValueError names the term whose exponent the data cannot place.
    """
    yv, Tv, ev = _as_1d(y, "y"), _as_1d(T, "T"), _as_1d(eps, "eps")
    if not (yv.size == Tv.size == ev.size) or yv.size < 6:
        raise ValueError(f"y, T and eps must have the same length >= 6, got {yv.size}, {Tv.size}, {ev.size}")
    if np.any(yv <= 0) or np.any(Tv <= 0) or np.any(ev < 0):
        raise ValueError("y and T must be > 0 and eps >= 0")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    base = ev == 0
    if base.sum() < 2 or (~base).sum() < 2:
        raise ValueError("need at least two points with eps = 0 and two with eps > 0 (both terms must matter)")
    a0 = float(np.polyfit(np.log(Tv[base]), np.log(yv[base]), 1)[0]) if len(set(Tv[base])) > 1 else -1.0
    theta0 = np.array([np.log(yv[base]).mean() - a0 * np.log(Tv[base]).mean(), a0, np.log(yv[~base].max()), 1.0])

    def residual(th):
        first = np.exp(th[0] + th[1] * np.log(Tv))
        second = np.where(base, 0.0, np.exp(th[2] + th[3] * np.log(np.where(base, 1.0, ev))))
        return np.log(first + second) - np.log(yv)

    sol = scipy.optimize.least_squares(residual, theta0, method="lm", xtol=1e-14, ftol=1e-14)
    dof = yv.size - 4
    s2 = float(sol.fun @ sol.fun) / dof
    jtj = sol.jac.T @ sol.jac
    if np.linalg.cond(jtj) > 1e12:
        raise ValueError("the two-term model is not identifiable on this grid: one term never matters (widen the range of T or eps)")
    se = np.sqrt(np.diag(s2 * np.linalg.inv(jtj)))
    q = float(scipy.stats.t.ppf(0.5 + level / 2, dof))
    th = sol.x
    ci = {"T": (float(th[1] - q * se[1]), float(th[1] + q * se[1])), "eps": (float(th[3] - q * se[3]), float(th[3] + q * se[3]))}
    points = [{"T": float(t), "eps": float(e), "y": float(v), "se": None, "floor": None, "used": True} for t, e, v in zip(Tv, ev, yv)]
    return FitResult({"T": float(th[1]), "eps": float(th[3])}, ci, float(th[0]), level, f"two-term nonlinear least squares on log y (Gauss-Newton covariance, t on {dof} dof)", points, s2, {"log_C2": float(th[2])})


def two_terms_predict(fit: FitResult, T, eps) -> np.ndarray:
    r""":math:`C_1 T^a + C_2\epsilon^b` of a :func:`fit_two_terms` result."""
    log_c2 = fit.extra["log_C2"]
    T, eps = np.asarray(T, float), np.asarray(eps, float)
    return np.exp(fit.log_prefactor) * T ** fit.exponents["T"] + np.where(eps > 0, np.exp(log_c2) * np.where(eps > 0, eps, 1.0) ** fit.exponents["eps"], 0.0)


def steps_to_eps(T, err, eps: float) -> float:
    r"""Smallest step count with error <= eps, by log-log linear interpolation of a decreasing
    error curve: :math:`T^* = T_i (\epsilon/e_i)^{\log(T_{i+1}/T_i)/\log(e_{i+1}/e_i)}` on the
    first bracketing segment. Returns ``inf`` when the curve never reaches eps and ``T[0]``
    when it starts below it."""
    Tv, ev = _as_1d(T, "T"), _as_1d(err, "err")
    if Tv.size != ev.size or Tv.size < 2:
        raise ValueError("T and err must have the same length >= 2")
    if (Tv <= 0).any() or (ev <= 0).any() or eps <= 0:
        raise ValueError("T, err and eps must be > 0")
    order = np.argsort(Tv)
    Tv, ev = Tv[order], ev[order]
    if ev[0] <= eps:
        return float(Tv[0])
    for i in range(Tv.size - 1):
        if ev[i + 1] <= eps < ev[i]:
            slope = math.log(Tv[i + 1] / Tv[i]) / math.log(ev[i + 1] / ev[i])
            return float(Tv[i] * (eps / ev[i]) ** slope)
    return math.inf


def log_slack(fit: FitResult, variable: str, log_power: float) -> float:
    r"""How much a bound's :math:`\log^k x` factor raises its exponent over the fitted range:
    the least-squares slope of :math:`k\ln\ln x` against :math:`\ln x` over the used points,
    i.e. the exponent that this fit would measure on the bound's own shape
    :math:`x^{e}\log^k x` (about :math:`k/\ln x` at the middle of the range)."""
    if not log_power:
        return 0.0
    u = np.log([p[variable] for p in fit.points if p["used"]])
    if (u <= 0).any():
        raise ValueError(f"a log factor needs {variable} > 1 at every used point")
    uc = u - u.mean()
    if not (uc @ uc) > 0:
        raise ValueError(f"the fit has a single value of {variable}: no slope to compare")
    return float(log_power * (uc @ np.log(u)) / (uc @ uc))


def steps_log_slack(steps_exponent: float, log_power: float, T_star: float) -> float:
    r"""Slack of a steps-to-eps exponent when the bound carries :math:`\log^k T`:
    :math:`T/\log^k T \propto x^{e}` gives :math:`d\ln T/d\ln x = e/(1 - k/\ln T)`, so the
    band is :math:`[e, e/(1 - k/\ln T^*)]` (infinite once the logs dominate, k >= ln T*)."""
    r = log_power / math.log(T_star) if log_power else 0.0
    return math.inf if r >= 1 else steps_exponent * r / (1 - r)


def verdict(fit: FitResult, variable: str, bound_exponent: float, slack: float = 0.0, max_width: float = 0.5) -> str:
    r"""Measured exponent against an upper bound :math:`\mathrm{err} \lesssim x^{e_b}` (times logs).

    The bound's own local exponent lies in the band :math:`[e_b, e_b + s]`, s >= 0 the slack
    of its log factors over the fitted range (:func:`log_slack`, :func:`steps_log_slack`).
    The verdicts (:data:`VERDICTS` holds their meanings), in the order they are tested, with
    [lo, hi] the CI:

    * "faster than the bound": hi < e_b (the error decays faster in T or n, or grows slower in
      d, than the bound: consistent with it), however wide the CI;
    * "violates the bound": lo > e_b + s, above the band even with the log factors, however
      wide the CI;
    * "inconclusive (CI too wide)": hi - lo > ``max_width`` and the CI meets [e_b, e_b + s];
    * "rate observed": lo <= e_b <= hi, the bound's exponent itself is inside the CI, with no
      log slack;
    * "consistent with the bound (log factors)": otherwise, e_b < lo <= e_b + s: only the log
      factors' band reaches the CI, so the bound holds but its power law was not seen.

    A CI that excludes the whole band answers the question however wide it is; a wide one
    that meets it places the exponent nowhere.
    """
    if not slack >= 0:
        raise ValueError(f"slack must be >= 0 (log factors raise the exponent), got {slack!r}")
    if not math.isfinite(bound_exponent):
        raise ValueError(f"bound_exponent must be a finite number, got {bound_exponent!r}")
    lo, hi = _ci_of(fit, variable)
    if hi < bound_exponent:
        return "faster than the bound"
    if lo > bound_exponent + slack:
        return "violates the bound"
    if hi - lo > max_width:
        return "inconclusive (CI too wide)"
    if lo <= bound_exponent <= hi:
        return "rate observed"
    return "consistent with the bound (log factors)"


@dataclass(frozen=True)
class Regime:
    r"""Whether a rate fit's range is in the asymptotic regime (:func:`asymptotic_regime`).

    Attributes
    ----------
    variable : str
        The variable whose exponent is tested (e.g. "T").
    local_slopes : list of (x_lo, x_hi, slope)
        Least-squares slope over each pair of successive values of the variable.
    drift : float
        :math:`c = d(\text{local exponent})/d\ln x`, from the log-quadratic fit.
    drift_ci : (float, float)
        CI of the drift at ``level``.
    slope_at_max : float
        Local exponent of the log-quadratic fit at the largest x.
    x_max : float
    tol : float
        Drift (per unit of ln x) below which the local exponent counts as stable.
    level : float
    method : str
        Uncertainty method of the log-quadratic fit (as in :class:`FitResult`).
    verdict : str
        One of :data:`REGIMES`.
    """

    variable: str
    local_slopes: list
    drift: float
    drift_ci: tuple
    slope_at_max: float
    x_max: float
    tol: float
    level: float
    method: str
    verdict: str

    def summary(self) -> str:
        """Local slopes, then the drift with its CI."""
        v = self.variable
        slopes = ", ".join(f"{s:+.3f} ({a:g}-{b:g})" for a, b, s in self.local_slopes)
        lo, hi = self.drift_ci
        return f"local slopes {slopes}; drift of the local slope {self.drift:+.4f} [{lo:+.4f}, {hi:+.4f}] per unit ln {v} ({self.method}, tolerance {self.tol:g})"

    def reach(self, slope: float) -> tuple[float, float, float]:
        r"""Where the local exponent reaches ``slope`` if it keeps drifting as now:
        :math:`x^* = x_{max}\exp\big((e^* - e(x_{max}))/c\big)`, with c the drift; returns
        (estimate, lo, hi) from c and its CI ends (``inf`` where that drift does not head
        to ``slope``). An extrapolation beyond the data: a statement of cost, not a measurement."""
        gap = slope - self.slope_at_max

        def at(c):
            if gap == 0:
                return self.x_max
            if c == 0 or gap / c < 0:
                return math.inf
            return self.x_max * math.exp(min(gap / c, 700.0))

        ends = sorted((at(self.drift_ci[0]), at(self.drift_ci[1])))
        return at(self.drift), ends[0], ends[1]


def asymptotic_regime(fit: FitResult, variable: str | None = None, tol: float = 0.005, n_boot: int = 2000, seed: int = 0) -> Regime:
    r"""Asymptotic-regime diagnostic of a rate fit: do the local slopes drift?

    Refits the fit's used points (same uncertainty method, same level) with a log-quadratic
    term in ``variable``, :math:`\log y = a_w + b\,u + \tfrac{c}{2}u^2`,
    :math:`u = \ln x - \overline{\ln x}`, with one intercept :math:`a_w` per combination of
    the other variables (their effect is held fixed, not assumed a power law): the local
    exponent :math:`b + c\,u` moves by c per unit of ln x, so c is the slope of the local
    slope against ln x, estimated from every point once (successive local slopes share points
    and their errors correlate). A pure power law has c = 0; a log factor :math:`\log^k x`
    gives :math:`c = -k/\ln^2 x`.

    Verdicts (:data:`REGIMES` holds their meanings): "asymptotic (local slopes stable)" when the CI of c lies in
    [-tol, tol]; "not yet asymptotic" when it excludes 0 and :math:`|c| >` tol; otherwise
    "undetermined (drift CI too wide)". The default tol = 0.005 per unit ln x is a change of
    the local exponent by about 0.01 per factor 10 in x.

    Parameters
    ----------
    fit : FitResult
        A fit from :func:`fit_power_law`; floor-excluded points stay excluded.
    variable : str, optional
        The variable to test; may be omitted for one-variable fits.
    tol : float
        Drift per unit ln x that counts as stable (> 0).
    n_boot, seed : int
        Bootstrap replicates and seed (bootstrap methods only).

    Returns
    -------
    Regime

    Raises
    ------
    ValueError
        With fewer than 4 distinct values of the variable among the used points (3 local
        slopes are the least that can show a drift).
    """
    if variable is None:
        if len(fit.exponents) != 1:
            raise ValueError(f"name the variable: the fit has {list(fit.exponents)}")
        variable = next(iter(fit.exponents))
    _ci_of(fit, variable)
    _check_fit_options(fit.level, n_boot, 0.0)
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol!r}")
    used = [p for p in fit.points if p["used"]]
    xs = sorted({p[variable] for p in used})
    if len(xs) < 4:
        raise ValueError(f"the drift test needs at least 4 distinct values of {variable} among the used points (3 local slopes); the fit has {len(xs)}")
    se = [p["se"] for p in used] if all("se" in p for p in used) else None
    data = _prepare([p["y"] for p in used], se, None, None, 0.0, {k: [p[k] for p in used] for k in fit.exponents})
    j = data.names.index(variable)
    lx = np.log(data.keys[data.used][:, j])
    u = lx - lx.mean()
    cells = _other_cells(data, j)
    X = np.column_stack([cells, u, 0.5 * u**2])
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise ValueError(f"the drift in {variable} cannot be separated from the other variables: each of their combinations needs several values of {variable}")
    coef, lo, hi, method, _ = _estimate(data, X, fit.level, n_boot, seed)
    c, c_lo, c_hi = float(coef[-1]), float(lo[-1]), float(hi[-1])
    if -tol <= c_lo and c_hi <= tol:
        word = "asymptotic (local slopes stable)"
    elif (c_lo > 0 or c_hi < 0) and abs(c) > tol:
        word = "not yet asymptotic"
    else:
        word = "undetermined (drift CI too wide)"
    return Regime(variable, _local_slopes(data, cells, lx, xs), c, (c_lo, c_hi), float(coef[-2] + c * u.max()), xs[-1], tol, fit.level, method, word)


def _other_cells(data: _Design, j: int) -> np.ndarray:
    """One-hot columns, one per combination of the variables other than j (one column of ones
    for a one-variable fit), over the used design points."""
    others = np.delete(data.keys[data.used], j, axis=1)
    _, code = np.unique(others, axis=0, return_inverse=True)
    code = code.ravel()
    return (code[:, None] == np.arange(code.max() + 1)[None, :]).astype(np.float64)


def _local_slopes(data: _Design, cells: np.ndarray, lx: np.ndarray, xs: list) -> list:
    """Least-squares exponent over each pair of successive values of the variable (log x = lx),
    on the log of the point means, with one intercept per combination of the other variables
    (``cells``); a pair where the exponent is not identifiable is skipped."""
    ly = np.log([data.y[data.group == g].mean() for g in data.used])
    out = []
    for a, b in zip(xs[:-1], xs[1:]):
        sel = np.isin(lx, np.log([a, b]))
        Xs = cells[sel][:, cells[sel].any(0)]
        Xs = np.column_stack([Xs, lx[sel]])
        if np.linalg.matrix_rank(Xs) == Xs.shape[1]:
            out.append((a, b, float(np.linalg.lstsq(Xs, ly[sel], rcond=None)[0][-1])))
    return out


def _ci_of(fit: FitResult, variable: str) -> tuple[float, float]:
    """The CI of ``variable``'s exponent; a variable the fit does not have is a ValueError naming those it has."""
    if variable not in fit.ci:
        raise ValueError(f"variable {variable!r} is not in the fit, which has {list(fit.ci)}")
    return fit.ci[variable]


def _points_table(fit: FitResult) -> str:
    lines = []
    for p in fit.points:
        vals = ", ".join(f"{k}={v:g}" for k, v in p.items() if k not in ("used", "reason"))
        lines.append(f"    {vals}" + ("" if p["used"] else f"  [excluded: {p['reason']}]"))
    return "\n".join(lines)


def assert_rate(fit: FitResult, variable: str, expected: float, tol: float = 0.0, bound: float | None = None) -> None:
    """Assert (for pytest) that the CI of ``variable``'s exponent, widened by ``tol`` on each
    side, contains ``expected``; the message shows the fit, the CI, the bound and the points."""
    lo, hi = _ci_of(fit, variable)
    if not (math.isfinite(expected) and math.isfinite(tol) and tol >= 0):
        raise ValueError(f"expected must be finite and tol finite and >= 0, got {expected!r}, {tol!r}")
    if lo - tol <= expected <= hi + tol:
        return
    msg = [
        f"rate of {variable}: measured {fit.summary(variable)}",
        f"  expected {expected:+.3f} (tolerance {tol:g})",
    ]
    if bound is not None:
        msg.append(f"  bound exponent {bound:+.3f}: verdict '{verdict(fit, variable, bound)}'")
    msg.append("  points:\n" + _points_table(fit))
    raise AssertionError("\n".join(msg))
