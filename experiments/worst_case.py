r"""How bad can d get? The worst case of the d exponents of TV and KL over rotation-invariant targets.

The bounds hold uniformly over targets with a bounded second moment: TV <~ d/T for DDPM (Li & Yan),
KL <~ d/T (Benton et al.; d-linear is the optimal worst case), d^(5/2)/T^2 for the accelerated
sampler (Li & Cai). Hand-picked targets grow far more slowly in d. Here, per d, the error of a
sampler at fixed T is maximised over a family (:class:`cmtheory.worst_case.RadialFamily`):
mixtures of at most K = 4 Gaussian-smoothed spheres with :math:`E|X_0|^2/d \le 1`, every width
:math:`\ge` FLOOR (a singular target is at TV 1 from every output) and each component's second
moment per coordinate at most 16. Every evaluation is an exact radial law
(:func:`cmtheory.worst_case.exact_error`): the search (Nelder-Mead, several seeded restarts,
:func:`cmtheory.worst_case.worst_case`) on unextrapolated laws, its maximiser then evaluated with
Richardson's extrapolation, which is the value reported.

Config kinds: ``fixed``, the two-scale mixture of ``high_dim`` (0.5 N(0, 0.5 I) + 0.5 N(0, I)) for
comparison; ``recorded``, a maximiser found by a full-profile search
(:data:`MAXIMISERS`, with the commit that found it) evaluated exactly; ``search``, a new search.
The quick profile re-evaluates the recorded maximisers and runs one short search; the full profile
searches every (sampler, metric, d) and, at d = 64, the width floors tau_min = 0.3 and 0.7 (how the
worst case moves with the floor). ``python -m experiments.worst_case record`` writes the best maximiser per
key from a results table into :data:`MAXIMISERS`.

Departures: T is fixed at 50 (the bounds' d exponent at fixed T); the start is N(0, I_d); the
family is rotation-invariant (the bounds cover every target, the search covers this family only).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cmtheory.processes import linear_schedule
from cmtheory.rates import fit_power_law, verdict
from cmtheory.report import Check, plt, rate_axes, save_figure
from cmtheory.targets import GaussianMixture, RadialMixture
from cmtheory.theory import BOUNDS
from cmtheory.worst_case import RadialFamily, exact_error, worst_case

NAME = "worst_case"
CLAIM = "E worst case: the d exponents of DDPM's and the exact-covariance sampler's TV and KL, maximised over mixtures of smoothed spheres (exact radial laws)"
#: steps, components, smallest width, second-moment bounds of the family
T, K, TAU_MIN, MOMENT, MOMENT_MAX = 50, 4, 0.5, 1.0, 4.0
#: the bound each (sampler, metric) is checked against; None: no bound in cmtheory.theory (the exponent is reported)
BOUND_KEYS = {("ddpm", "tv"): "li_yan_ddpm", ("ddpm", "kl"): "benton_kl", ("exact_covariance", "tv"): "li_cai_accelerated", ("exact_covariance", "kl"): None}
#: the curves searched in the full profile (the exact-covariance sampler's KL, which no bound in
#: cmtheory.theory covers, is measured on the fixed target only)
SEARCHED = [("ddpm", "tv"), ("ddpm", "kl"), ("exact_covariance", "tv")]
#: cells of the search's cheap (unextrapolated) laws; the maximiser is evaluated on 1024 with Richardson
SEARCH_CELLS = 512
DS = [1, 4, 16, 64, 256, 1024, 4096]
#: TV at or above this is saturated (TV <= 1 bends the curve): left out of the TV fits
SATURATION = 0.5
PROFILES = {
    "quick": {"d": DS, "search": [("ddpm", "tv", 16, TAU_MIN)], "restarts": 2, "evaluations": 16},
    "full": {"d": DS, "search": [(s, m, d, TAU_MIN) for (s, m) in SEARCHED for d in DS] + [("ddpm", "tv", 64, f) for f in (0.3, 0.7)],
             "restarts": 2, "evaluations": 60},
}
#: the recorded maximisers (data: written by ``python -m experiments.worst_case record``)
MAXIMISERS = Path(__file__).with_name("worst_case_maximisers.json")


def recorded() -> list[dict]:
    """The recorded maximisers: dicts with sampler, metric, d, tau_min, weights, radii, widths, search_value, value, commit."""
    return json.loads(MAXIMISERS.read_text())["maximisers"] if MAXIMISERS.exists() else []


def configs(profile: str) -> list[dict]:
    p = PROFILES[profile]
    fixed = [{"kind": "fixed", "sampler": s, "metric": m, "d": d} for (s, m) in BOUND_KEYS for d in p["d"]]
    known = [{"kind": "recorded", "sampler": r["sampler"], "metric": r["metric"], "d": r["d"], "tau_min": r["tau_min"]} for r in recorded() if r["d"] in p["d"]]
    search = [{"kind": "search", "sampler": s, "metric": m, "d": d, "tau_min": f, "restarts": p["restarts"], "evaluations": p["evaluations"]} for s, m, d, f in p["search"]]
    return fixed + known + search


def verify_configs(profile: str) -> list[dict]:
    """A cheap subset for ``cmtheory checks --verify``: the fixed target's DDPM rows at the smallest d."""
    return [c for c in configs(profile) if c["kind"] == "fixed" and c["sampler"] == "ddpm" and c["d"] == min(PROFILES[profile]["d"])]


def two_scale(d: int) -> GaussianMixture:
    """0.5 N(0, 0.5 I_d) + 0.5 N(0, I_d), high_dim's main target."""
    return GaussianMixture([0.5, 0.5], torch.zeros(2, d), [0.5, 1.0])


def family(d: int, tau_min: float) -> RadialFamily:
    """The searched family in R^d with the smallest width ``tau_min``."""
    return RadialFamily(d, K=K, tau_min=tau_min, moment=MOMENT, moment_max=MOMENT_MAX)


def _member_row(target: RadialMixture) -> dict:
    return {"weights": json.dumps(target.weights.tolist()), "radii": json.dumps(target.radii.tolist()), "widths": json.dumps(target.widths.tolist()), "second_moment": target.second_moment}


def _recorded_target(config: dict) -> tuple[RadialMixture, dict]:
    for r in recorded():
        if all(r[k] == config[k] for k in ("sampler", "metric", "d", "tau_min")):
            target = RadialMixture(r["d"], r["weights"], r["radii"], r["widths"])
            family(r["d"], r["tau_min"]).check(target)
            return target, r
    raise ValueError(f"no recorded maximiser for {config}")


def run(config: dict, seed: int, device: str = "cpu") -> list[dict]:
    sampler, metric, d = config["sampler"], config["metric"], config["d"]
    sched = linear_schedule(T)
    extra: dict = {}
    if config["kind"] == "fixed":
        target = two_scale(d)
    elif config["kind"] == "recorded":
        target, r = _recorded_target(config)
        extra = {"recorded_value": r["value"], "recorded_commit": r["commit"], "recorded_spread": r.get("spread"), **_member_row(target)}
    else:
        fam = family(d, config["tau_min"])
        found = worst_case(lambda tg: exact_error(sampler, tg, sched, metric=metric, start="normal", cells=SEARCH_CELLS, richardson=False).value,
                           fam, restarts=config["restarts"], evaluations=config["evaluations"], seed=seed % 2**32)
        target = found.target
        extra = {"search_value": found.value, "restart_values": json.dumps(found.restart_values), "spread": found.spread,
                 "converged": found.converged, "evaluated": found.evaluations, "unresolved": len(found.unresolved), **_member_row(target)}
    est = exact_error(sampler, target, sched, metric=metric, start="normal")
    return [{"metric": metric, **est.as_row(), "lost": est.extra["lost"], **extra}]


def _worst_rows(df: pd.DataFrame, tau_min: float = TAU_MIN) -> pd.DataFrame:
    """Per (sampler, metric, d): the row of largest value among the recorded and searched maximisers at ``tau_min``."""
    m = df[df["kind"].isin(["recorded", "search"]) & np.isclose(df["tau_min"].astype(float), tau_min)]
    if m.empty:
        return m
    return m.loc[m.groupby(["sampler", "metric", "d"])["value"].idxmax()].sort_values(["sampler", "metric", "d"])


def _describe(r) -> str:
    """A maximiser in words: weight, radius / sqrt(d) and width of each distinct component (those equal
    to two decimals merged, their weights added) of weight >= 1e-3, heaviest first."""
    parts: dict = {}
    for wk, rk, tk in zip(json.loads(r["weights"]), json.loads(r["radii"]), json.loads(r["widths"])):
        key = (round(rk / math.sqrt(r["d"]), 2), round(tk, 2))
        parts[key] = parts.get(key, 0.0) + wk
    return " + ".join(f"{w:.2f} x (r = {rk:.2f} sqrt(d), tau = {tk:.2f})" for (rk, tk), w in sorted(parts.items(), key=lambda kv: -kv[1]) if w >= 1e-3)


def _convergence_note(rows: pd.DataFrame) -> str:
    rec = rows[rows["kind"] == "recorded"].dropna(subset=["recorded_spread"]) if "recorded_spread" in rows else rows.iloc[:0]
    head = ""
    if len(rec):
        bad = rec[rec["recorded_spread"] > 0.05]
        head = (f"The recorded searches: {len(rec) - len(bad)} of {len(rec)} had restarts within 5% of each other"
                + (" (spread " + ", ".join(f"{r.recorded_spread:.0%} at d={int(r.d)}" for r in bad.itertuples()) + ": the worst case there may be larger)" if len(bad) else "") + ". ")
    s = rows[rows["kind"] == "search"]
    if s.empty:
        return head + "No search in this profile's rows for this curve: the recorded maximisers (full profile) re-evaluated exactly."
    bad = s[~s["converged"].astype(bool)]
    text = "; ".join(f"d={int(r.d)}: {r.evaluated:.0f} evaluations ({r.unresolved:.0f} unresolved: a law off its grid or a KL without resolved output mass), restarts' best values [{', '.join(f'{v:.4g}' for v in json.loads(r.restart_values))}], spread {r.spread:.1%}" for r in s.itertuples())
    this = "This run's searches: restarts agree within 5%. " if bad.empty else f"This run's searches: {len(bad)} of {len(s)} have restarts that disagree by more than 5% (not converged: the worst case may be larger). "
    return head + this + text + "."


def _how_found(df: pd.DataFrame, sampler: str, metric: str) -> str:
    """Where a curve's maximisers come from: the recorded ones (the full profile's searches, with their
    commits) and this run's searches."""
    how = f"searches (on unextrapolated laws of {SEARCH_CELLS} cells) of a random design of 2 x {3 * K + 1} points, then Nelder-Mead from its best {{}}, at most {{}} evaluations each"
    rows = df[(df["sampler"] == sampler) & (df["metric"] == metric)]
    rec, searched = rows[rows["kind"] == "recorded"], rows[rows["kind"] == "search"]
    parts = []
    if len(rec):
        full = PROFILES["full"]
        commits = ", ".join(sorted(set(rec["recorded_commit"].astype(str))))
        parts.append(f"the recorded maximisers of the full profile's {how.format(full['restarts'], full['evaluations'])} (found at {commits}), re-evaluated")
    if len(searched):
        parts.append(f"in this run, {how.format(int(searched['restarts'].max()), int(searched['evaluations'].max()))}, at d = {sorted(int(v) for v in searched['d'].unique())}")
    return "; ".join(parts)


def _curve_check(df: pd.DataFrame, w: pd.DataFrame, f: pd.DataFrame, sampler: str, metric: str, key: str | None, profile: str):
    """The check of one worst-case curve ``w`` (one row per d) beside the fixed target's ``f``: the fit of
    its d exponent (TV: the unsaturated points), the verdict against the bound ``key``, and the notes."""
    finite = w[np.isfinite(w["value"].astype(float))]
    used = finite[finite["value"] < SATURATION] if metric == "tv" else finite
    if len(used) < 3:
        return None, None
    fit = fit_power_law(used["value"].to_numpy(float), se=used["se"].to_numpy(float), d=used["d"].to_numpy(float))
    fam_text = f"mixtures of at most {K} Gaussian-smoothed spheres, E|X_0|^2/d <= {MOMENT:g}, widths >= {TAU_MIN:g}, each component's E|X|^2/d <= {MOMENT_MAX:g}"
    cfg = (f"profile {profile}; {sampler}, T = {T}, linear schedule, start N(0, I_d); {metric.upper()} {'(output, X_0)' if metric == 'tv' else '(X_0 || output)'}; "
           f"worst case over {fam_text}; d in {[int(v) for v in w['d']]}; {_how_found(df, sampler, metric)}; "
           "each maximiser's value exact (TV: Richardson; KL: the 2N-cell law with Richardson's error estimate)")
    rows = df[(df["sampler"] == sampler) & (df["metric"] == metric)]
    notes = ["Maximisers (weight x (radius, width)): " + "; ".join(f"d={int(r['d'])}: {_describe(r)} (E|X|^2/d = {r['second_moment']:.3f}, {metric.upper()} = {r['value']:.4g} +- {r['se']:.1e})" for _, r in w.iterrows()) + ".",
             _convergence_note(rows[np.isclose(rows["tau_min"].astype(float).fillna(-1), TAU_MIN)])]
    rec = rows[rows["kind"] == "recorded"]
    if len(rec):
        drift = ((rec["value"] - rec["recorded_value"]).abs() / rec["value"]).dropna()
        if len(drift):
            notes.append(f"The recorded maximisers re-evaluated here differ from their recorded exact values by at most {drift.max():.1e} (relative"
                         + ("; the KLs were recorded from the Richardson law and are re-evaluated on the 2N-cell law" if metric == "kl" else "") + ").")
    if len(finite) < len(w):
        notes.append("Left out as unresolved (an exact law that could not resolve the error): " + ", ".join(f"d={int(r.d)}: {r.value}" for r in w[~np.isfinite(w["value"].astype(float))].itertuples()) + ".")
    if metric == "tv" and len(used) < len(finite):
        notes.append(f"Left out of the fit as saturated (TV >= {SATURATION:g}, where TV <= 1 bends the curve): " + ", ".join(f"d={int(r.d)}: {r.value:.3f}" for r in finite[finite["value"] >= SATURATION].itertuples()) + ".")
    if len(f) >= 3:
        ffit = fit_power_law(f["value"].to_numpy(float), d=f["d"].to_numpy(float))
        notes.append(f"The fixed two-scale mixture (high_dim's target) at the same T: b = {ffit.exponents['d']:.3f} [{ffit.ci['d'][0]:.3f}, {ffit.ci['d'][1]:.3f}].")
    if metric == "kl":
        notes.append("KL / d of the worst case per d (a d-linear worst case keeps it bounded): " + ", ".join(f"d={int(r.d)}: {r.value / r.d:.3g}" for r in finite.itertuples())
                     + ". Benton et al.'s bound is for the early-stopped law with its constant set by the second moment, here at most d; "
                     "the narrowest Gaussian's KL is exactly d-linear, and the fitted exponent's distance from 1 measures how the searches' gain over it changes with d.")
    if key is None:
        word, statement, citation, bound_exp = "reported (no bound for this metric and sampler in cmtheory.theory)", "no bound in docs/papers.md", "-", None
    else:
        b = BOUNDS[key]
        word, statement, citation, bound_exp = verdict(fit, "d", b.exponents["d"]), b.formula, b.citation, b.exponents["d"]
        notes.append(f"The bound's d exponent is {bound_exp:g}; the worst case found reaches d^{fit.exponents['d']:.2f} "
                     f"({fit.exponents['d'] / bound_exp:.0%} of it). A search finds lower bounds on the worst case: a larger exponent may exist outside the family or beyond the search.")
    return Check(f"E worst case: {metric.upper()} vs d, {sampler} (max over smoothed-sphere mixtures)", citation, statement, "d", bound_exp, fit, word,
                 "figures/worst_case.png", cfg, "the worst case over a rotation-invariant family found by a finite search: a lower bound on the bound's worst case", notes), fit


def checks(df: pd.DataFrame, figures_dir: str, profile: str) -> list[Check]:
    fig, grid = plt.subplots(2, 2, figsize=(13, 9.5), layout="constrained")
    axes = grid.ravel()
    out = []
    worst = _worst_rows(df)
    for i, ((sampler, metric), key) in enumerate(BOUND_KEYS.items()):
        w = worst[(worst["sampler"] == sampler) & (worst["metric"] == metric)]
        f = df[(df["kind"] == "fixed") & (df["sampler"] == sampler) & (df["metric"] == metric)].sort_values("d")
        check, fit = _curve_check(df, w, f, sampler, metric, key, profile)
        if check is None:
            continue
        out.append(check)
        ax = axes[0] if metric == "tv" else axes[1]
        w = w[np.isfinite(w["value"].astype(float))]
        rate_axes(ax, w["d"], w["value"], w["se"], fit, "d", check.bound_exponent, label=f"{sampler}, worst case", color=f"C{i}",
                  excluded=w["value"].to_numpy() >= (SATURATION if metric == "tv" else np.inf), why_excluded="saturated")
        if len(f):
            ax.loglog(f["d"], f["value"], "s--", color=f"C{i}", lw=0.8, ms=3, mfc="none", label=f"{sampler}, two-scale mixture (fixed)")
    out += _floor_checks(df, profile)
    for ax, metric in zip(axes[:2], ("TV(output, X_0)", "KL(X_0 || output)")):
        values = df.loc[df["metric"] == ("tv" if metric.startswith("TV") else "kl"), "value"].astype(float)
        values = values[np.isfinite(values)]
        if len(values):
            ax.set_ylim(0.5 * values.min(), (1.5 if metric.startswith("TV") else 3) * values.max())
        ax.set(xlabel="d", ylabel=metric, title=f"{metric.split('(')[0]}: worst case over the family (dots) and a fixed target (squares), T = {T}")
        ax.legend(fontsize=7, loc="lower right")
    _profiles_panel(axes[2], axes[3], worst[(worst["sampler"] == "ddpm") & (worst["metric"] == "tv")])
    save_figure(fig, figures_dir, NAME)
    return out


def _profiles_panel(ax_cdf, ax_parts, rows: pd.DataFrame) -> None:
    """DDPM's TV maximisers: the CDF of |X_0|/sqrt(d), one per d, and their components (radius / sqrt(d)
    against width, the marker's area the weight)."""
    for j, (_, r) in enumerate(rows.iterrows()):
        d = int(r["d"])
        w, rad, wid = (json.loads(r[k]) for k in ("weights", "radii", "widths"))
        u = np.linspace(0.0, 3.0, 600)
        ax_cdf.plot(u, RadialMixture(d, w, rad, wid).radial_cdf(u * math.sqrt(d), 1.0, 0.0), color=f"C{j}", lw=1, label=f"d={d}")
        ax_parts.scatter(np.array(rad) / math.sqrt(d), wid, s=300 * np.array(w), color=f"C{j}", alpha=0.6, label=f"d={d}")
    ax_cdf.set(xlabel="|X_0| / sqrt(d)", ylabel="CDF", title="DDPM's TV maximisers: law of the radius")
    ax_cdf.legend(fontsize=7, loc="lower right")
    ax_parts.set(xlabel="component radius r_k / sqrt(d)", ylabel="component width tau_k", title=f"their components (area = weight; width floor {TAU_MIN:g})")
    ax_parts.legend(fontsize=7, loc="upper right")


def _floor_checks(df: pd.DataFrame, profile: str) -> list[Check]:
    """How the worst case at d = 64 moves with the width floor tau_min (full profile's searches)."""
    rows = df[(df["kind"].isin(["recorded", "search"])) & (df["sampler"] == "ddpm") & (df["metric"] == "tv") & (df["d"] == 64)]
    best = rows.loc[rows.groupby("tau_min")["value"].idxmax()].sort_values("tau_min") if len(rows) else rows
    if len(best) < 2:
        return []
    table = "; ".join(f"tau_min {r['tau_min']:g}: TV {r['value']:.4g} at {_describe(r)}" for _, r in best.iterrows())
    fl = best["tau_min"].to_numpy(float).tolist()
    cfg = f"profile {profile}; DDPM, T = {T}, d = 64; the family of the TV rows with width floors tau_min in {fl}"
    return [Check("E worst case: DDPM's worst-case TV against the width floor (d = 64)", "-", "a singular target (tau_min = 0) is at TV 1 from every output", "tau_min", None, None,
                  "reported (the floor is a modelling choice, not a bound's variable)", "figures/worst_case.png", cfg, "", [f"Worst-case TV per floor: {table}."])]


def record(results_dir: str = "results") -> None:
    """Write the best maximiser per (sampler, metric, d, tau_min) of the search rows in ``results_dir``
    (by the search's own value, on unextrapolated laws) into :data:`MAXIMISERS`, with the commit of
    the run that found it and its exact value there (None where that was not finite), keeping
    recorded ones that no search beat."""
    from cmtheory.sweep import load_results

    df = load_results(NAME, results_dir)
    best = {(r["sampler"], r["metric"], r["d"], r["tau_min"]): r for r in recorded()}
    for _, row in df[df["kind"] == "search"].iterrows():
        key = (row["sampler"], row["metric"], int(row["d"]), float(row["tau_min"]))
        if key not in best or row["search_value"] > best[key]["search_value"]:
            value = float(row["value"])
            best[key] = {"sampler": key[0], "metric": key[1], "d": key[2], "tau_min": key[3], "weights": json.loads(row["weights"]), "radii": json.loads(row["radii"]),
                         "widths": json.loads(row["widths"]), "search_value": float(row["search_value"]), "value": value if math.isfinite(value) else None,
                         "restart_values": json.loads(row["restart_values"]), "spread": float(row["spread"]), "commit": str(row["commit"])}
    MAXIMISERS.write_text(json.dumps({"about": "worst-case maximisers found by experiments/worst_case.py searches; search_value = the search's own value "
                                               "(unextrapolated law), value = the exact error (Richardson) at the commit named",
                                      "T": T, "K": K, "maximisers": [best[k] for k in sorted(best)]}, indent=1) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Record the worst-case maximisers of a results table")
    parser.add_argument("command", choices=["record"])
    parser.add_argument("--results", default="results")
    record(parser.parse_args().results)
