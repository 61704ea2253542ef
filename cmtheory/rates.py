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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.stats

__all__ = ["FitResult", "fit_power_law", "steps_to_eps", "log_slack", "steps_log_slack", "verdict", "assert_rate", "VERDICTS"]

VERDICTS = ("matches", "faster than bound", "violates bound", "inconclusive (CI too wide)")


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
    """

    exponents: dict
    ci: dict
    log_prefactor: float
    level: float
    method: str
    points: list = field(default_factory=list)
    chi2_red: float | None = None

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
    if not variables:
        raise ValueError("give at least one variable, e.g. fit_power_law(err, T=Ts)")
    yv = _as_1d(y, "y")
    m = yv.size
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
    counts = np.bincount(group)
    replicated = counts.max() > 1

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
    used_groups = np.flatnonzero(ok_group)
    if used_groups.size < len(names) + 1:
        raise ValueError(f"too few usable points: {used_groups.size} (need > {len(names)}); excluded: {reason}")

    X = np.column_stack([np.ones(used_groups.size), np.log(keys[used_groups])])
    rows = np.array([np.flatnonzero(group == g)[0] for g in used_groups])  # one row per point when not replicated
    alpha = 1 - level
    rng = np.random.default_rng(seed)
    chi2_red = None

    if replicated:
        method = "cluster bootstrap"
        members = [yv[group == g] for g in used_groups]
        ybar = np.array([mm.mean() for mm in members])
        # weights from the pooled relative error (per-point errors from a few replicates are
        # too noisy to weight by: the bootstrap holds weights fixed, and coverage suffers)
        w = np.array([mm.size for mm in members], dtype=np.float64)
        P = _wls_operator(X, w)
        coef = P @ np.log(ybar)
        boot_means = np.empty((n_boot, used_groups.size))
        for j, mm in enumerate(members):
            k = mm.size
            draws = mm[rng.integers(0, k, (n_boot, k))].mean(1)
            boot_means[:, j] = ybar[j] + (draws - ybar[j]) * (math.sqrt(k / (k - 1)) if k > 1 else 1.0)
        boot = np.log(np.maximum(boot_means, 1e-300)) @ P.T
        # bootstrap standard error with a Student-t quantile on the pooled within-point degrees
        # of freedom (percentile intervals undercover with a handful of replicates per point)
        dof = max(sum(mm.size - 1 for mm in members), 1)
        tq = scipy.stats.t.ppf(1 - alpha / 2, dof)
        sd = boot.std(axis=0, ddof=1)
        ci = {k: (float(coef[j + 1] - tq * sd[j + 1]), float(coef[j + 1] + tq * sd[j + 1])) for j, k in enumerate(names)}
        return FitResult({k: float(coef[j + 1]) for j, k in enumerate(names)}, ci, float(coef[0]), level, method, points)
    elif sev is not None:
        method = "parametric bootstrap"
        ly = np.log(yv[rows])
        s_log = sev[rows] / yv[rows]
        if (s_log <= 0).any():
            raise ValueError("se must be > 0 at every used point for a weighted fit")
        w = 1 / s_log**2
        P = _wls_operator(X, w)
        coef = P @ ly
        resid = ly - X @ coef
        dof = max(used_groups.size - X.shape[1], 1)
        chi2_red = float((w * resid**2).sum() / dof)
        scale = math.sqrt(max(1.0, chi2_red))
        boot = (ly + scale * s_log * rng.standard_normal((n_boot, ly.size))) @ P.T
    else:
        method = "ols"
        ly = np.log(yv[rows])
        coef, *_ = np.linalg.lstsq(X, ly, rcond=None)
        dof = used_groups.size - X.shape[1]
        if dof < 1:
            raise ValueError("an unweighted fit needs more points than parameters + 1 for a CI")
        resid = ly - X @ coef
        cov = (resid @ resid / dof) * np.linalg.inv(X.T @ X)
        tq = scipy.stats.t.ppf(1 - alpha / 2, dof)
        half = tq * np.sqrt(np.maximum(np.diag(cov), 0.0))  # exact fits: round-off can go below 0
        ci = {k: (float(coef[j + 1] - half[j + 1]), float(coef[j + 1] + half[j + 1])) for j, k in enumerate(names)}
        return FitResult({k: float(coef[j + 1]) for j, k in enumerate(names)}, ci, float(coef[0]), level, method, points)

    lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2], axis=0)
    ci = {k: (float(lo[j + 1]), float(hi[j + 1])) for j, k in enumerate(names)}
    return FitResult({k: float(coef[j + 1]) for j, k in enumerate(names)}, ci, float(coef[0]), level, method, points, chi2_red)


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
    r"""How much a bound's :math:`\log^k x` factor raises its local exponent over the fitted
    range: the log-log slope of :math:`\log^k x` is :math:`k/\ln x`, taken at the geometric
    mean of the used points."""
    xs = [p[variable] for p in fit.points if p["used"]]
    return log_power / float(np.mean(np.log(xs))) if log_power else 0.0


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

    * "inconclusive (CI too wide)": the CI is wider than ``max_width``;
    * "matches": the CI meets the band;
    * "faster than bound": the CI lies below :math:`e_b` (the error decays faster in T, or
      grows slower in d, than the bound: consistent with it);
    * "violates bound": the CI lies above :math:`e_b + s`.
    """
    lo, hi = fit.ci[variable]
    if hi - lo > max_width:
        return VERDICTS[3]
    if hi < bound_exponent:
        return VERDICTS[1]
    if lo > bound_exponent + slack:
        return VERDICTS[2]
    return VERDICTS[0]


def _points_table(fit: FitResult) -> str:
    lines = []
    for p in fit.points:
        vals = ", ".join(f"{k}={v:g}" for k, v in p.items() if k not in ("used", "reason"))
        lines.append(f"    {vals}" + ("" if p["used"] else f"  [excluded: {p['reason']}]"))
    return "\n".join(lines)


def assert_rate(fit: FitResult, variable: str, expected: float, tol: float = 0.0, bound: float | None = None) -> None:
    """Assert (for pytest) that the CI of ``variable``'s exponent, widened by ``tol`` on each
    side, contains ``expected``; the message shows the fit, the CI, the bound and the points."""
    lo, hi = fit.ci[variable]
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
