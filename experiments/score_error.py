"""The score-error terms of the bounds, measured on exact laws: TV against the L2 score error eps
and against its Jacobian error eps_J, for stochastic and deterministic samplers.

The score is perturbed by :func:`cmtheory.samplers.scores.controlled_perturbation`, a fixed field
whose L2 error under every channel's law is exactly eps and whose Jacobian error is exactly eps_J
(set independently: eps_J / eps is the field's frequency). The field is non-random, so every
exact-law engine takes it and TV is exact (no Monte Carlo). Target: the 1-D two-component
mixture of claim E; linear VP schedule; start q_T (only discretisation and score error remain).

* ``eps``: TV against eps at fixed T, eps_J = eps;
* ``eps_J``: TV against eps_J at fixed eps = 0.02 (does a deterministic sampler's error grow
  with the Jacobian error while a stochastic one's does not?);
* ``joint``: DDPM over a grid of T and eps, fitted by TV ~ C1 T^a + C2 eps^b.

Each config also records the realised errors of its field, by Monte Carlo under q_t at three
steps (t = T, T/2, 1) next to the nominal ones.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import torch
from matplotlib.ticker import NullLocator

from cmtheory.metrics import tv_grid
from cmtheory.processes import linear_schedule
from cmtheory.rates import fit_power_law, fit_two_terms, two_terms_predict, verdict
from cmtheory.report import Check, plt, save_figure
from cmtheory.laws import gmm_1d_law, richardson_law, uniform_grid
from cmtheory.samplers import SAMPLERS, sampler_law_1d
from cmtheory.samplers.scores import controlled_perturbation, realised_errors
from cmtheory.targets import GaussianMixture
from cmtheory.theory import BOUNDS

NAME = "score_error"
CLAIM = "Score-error terms: TV against the L2 score error and its Jacobian error"
TARGET = GaussianMixture([0.4, 0.6], [[-1.0], [1.0]], [0.25, 0.16])
LO, HI = -7.0, 7.0
SAMPLERS_SWEPT = ["ddpm", "exact_covariance", "ddim", "li_icml2024_ode", "heroism"]
#: the eps sweep leaves out the exact-covariance sampler (its exact law is the costliest; it is in the eps_J sweep)
EPS_SWEPT = ["ddpm", "ddim", "li_icml2024_ode", "heroism"]
#: TV saturates at 1: fits use points with TV below this
TV_MAX = 0.5
#: each sampler's bound for its score terms: the stochastic ones' (L2 only), HEROISM's for the deterministic ones
SCORE_BOUNDS = {"ddpm": "li_yan_ddpm", "exact_covariance": "li_cai_accelerated", "ddim": "heroism", "li_icml2024_ode": "heroism", "heroism": "heroism"}
EPS_J_AT = 0.02
#: points of the eps sweep where the score term dominates: TV >= this multiple of TV at eps = 0
DOMINANCE = 3.0
#: the eps_J sweep is fitted over its high-frequency end, eps_J / eps >= this
MIN_FREQUENCY = 4.0
PHASE = 0.3

PROFILES = {
    # T = 100 (DDPM's eps sweep at T = 400, where its discretisation error 3.9e-3 leaves room
    # for the score term) keeps the exact laws within about 100 s of CPU; the full profile doubles T
    "quick": {"T": 100, "T_ddpm": 400, "eps": [0.01, 0.02, 0.04, 0.08, 0.16, 0.32], "omega": [0.5, 1, 2, 4, 8, 16, 32], "joint_T": [50, 100, 200, 400], "joint_eps": [0.01, 0.02, 0.04, 0.08], "cells": 1024, "n_mc": 20_000},
    "full": {"T": 200, "T_ddpm": 800, "eps": [0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32], "omega": [0.25, 0.5, 1, 2, 4, 8, 16, 32, 64], "joint_T": [50, 100, 200, 400, 800], "joint_eps": [0.005, 0.01, 0.02, 0.04, 0.08], "cells": 2048, "n_mc": 100_000},
}


def configs(profile: str) -> list[dict]:
    """The grid of the profile: plain-valued dicts."""
    p = PROFILES[profile]
    base = {"cells": p["cells"], "n_mc": p["n_mc"]}
    out = [{"kind": "eps", "sampler": s, "T": p["T_ddpm"] if s == "ddpm" else p["T"], "eps": e, "eps_J": e, **base} for s in EPS_SWEPT for e in [0.0] + p["eps"]]
    out += [{"kind": "eps_J", "sampler": s, "T": p["T_ddpm"] if s == "ddpm" else p["T"], "eps": EPS_J_AT, "eps_J": EPS_J_AT * w, **base} for s in SAMPLERS_SWEPT for w in p["omega"]]
    out += [{"kind": "joint", "sampler": "ddpm", "T": T, "eps": e, "eps_J": e, **base} for T in p["joint_T"] for e in [0.0] + p["joint_eps"]]
    return out


def verify_configs(profile: str) -> list[dict]:
    """A cheap subset for ``cmtheory checks --verify``: the unperturbed and the smallest eps of every sampler."""
    p = PROFILES[profile]
    return [c for c in configs(profile) if c["kind"] == "eps" and c["eps"] in (0.0, p["eps"][0])]


def exact_tv(sampler: str, T: int, eps: float, eps_J: float, cells: int):
    """Exact TV(output, target) of a sampler run with the perturbed score, from q_T."""
    pert = controlled_perturbation(TARGET, eps, eps_J, PHASE)
    sched = linear_schedule(T)

    def law_fn(edges):
        return sampler_law_1d(sampler, TARGET, sched, edges, score=pert.score, hvp=pert.hvp)

    law = richardson_law(law_fn, LO, HI, cells) if SAMPLERS[sampler].exact_law == "markov" else law_fn(uniform_grid(LO, HI, cells))
    return tv_grid(law, gmm_1d_law(TARGET, 1.0, 0.0, law.edges))


def run(config: dict, seed: int, device: str = "cpu") -> list[dict]:
    """Rows of one config: the exact TV, and the realised errors at t = T, T/2, 1."""
    T = config["T"]
    rows = [{"metric": "tv", **exact_tv(config["sampler"], T, config["eps"], config["eps_J"], config["cells"]).as_row()}]
    if config["eps"] > 0:
        pert = controlled_perturbation(TARGET, config["eps"], config["eps_J"], PHASE)
        sched = linear_schedule(T)
        g = torch.Generator().manual_seed(seed)
        for t in (T, T // 2, 1):
            r = realised_errors(pert, TARGET, *sched.channel(t), n=config["n_mc"], generator=g)
            rows += [{"metric": f"realised {k}", "t": t, **r[k].as_row()} for k in ("eps", "eps_J")]
    return rows


def _tv(df, kind, sampler):
    sub = df[(df["kind"] == kind) & (df["sampler"] == sampler) & (df["metric"] == "tv")]
    return sub.sort_values(["T", "eps", "eps_J"])


def _realised_note(df):
    r = df[df["metric"].str.startswith("realised", na=False)]
    nominal = np.where(r["metric"] == "realised eps", r["eps"], r["eps_J"])
    z = np.abs(r["value"].to_numpy(float) - nominal) / np.maximum(r["se"].to_numpy(float), 1e-300)
    rel = np.abs(r["value"].to_numpy(float) / nominal - 1)
    return (f"Realised errors of the perturbation, by Monte Carlo under q_t at t = T, T/2, 1 ({len(r)} estimates): "
            f"within {rel.max():.1%} of the nominal eps and eps_J, at most {z.max():.1f} standard errors away.")


def _eps_check(df, sampler, ax, color, cfg, realised):
    """TV against eps where the score term dominates, fitted in 1/eps: a bound TV <~ eps^e reads
    (1/eps)^-e, so a larger decay exponent is "faster than the bound" as for T."""
    sub = _tv(df, "eps", sampler)
    T = int(sub["T"].iloc[0])
    tv0 = float(sub[sub["eps"] == 0]["value"].iloc[0])
    pts = sub[sub["eps"] > 0]
    eps, v = pts["eps"].to_numpy(float), pts["value"].to_numpy(float)
    keep = (v >= DOMINANCE * tv0) & (v <= TV_MAX)
    b = BOUNDS[SCORE_BOUNDS[sampler]]
    e = -b.score_exponents["eps_score"]
    ax.loglog(eps, v, "o", ms=4, color=color, label=f"{sampler} (T = {T})")
    ax.axhline(tv0, color=color, ls=":", lw=0.8)
    claim = f"Score error: TV vs eps, {sampler} (T={T}, eps_J = eps)"
    dep = "" if sampler in ("ddpm", "heroism") else f"bound exponent from {b.citation.split(',')[0]}'s eps_score term"
    notes = [f"TV at eps = 0 (discretisation alone): {tv0:.2e}; fitted in 1/eps over eps where {DOMINANCE:g} x that <= TV <= {TV_MAX:g} ({int(keep.sum())} of {keep.size} points; excluded eps: {[float(x) for x in eps[~keep]]}).", realised]
    if keep.sum() < 3:
        return Check(claim, b.citation, b.formula, "inv_eps", e, None, f"inconclusive (only {keep.sum()} points where the score term dominates)", "figures/score_error.png", cfg, dep, notes)
    fit = fit_power_law(v[keep], inv_eps=1 / eps[keep])
    xs = np.geomspace(eps[keep].min(), eps[keep].max(), 20)
    ax.plot(xs, np.exp(fit.log_prefactor) * xs ** -fit.exponents["inv_eps"], "-", lw=1, color=color)
    return Check(claim, b.citation, b.formula, "inv_eps", e, fit, verdict(fit, "inv_eps", e), "figures/score_error.png", cfg, dep, notes)


def _eps_J_check(df, sampler, ax, color, cfg):
    sub = _tv(df, "eps_J", sampler)
    eJ, v = sub["eps_J"].to_numpy(float), sub["value"].to_numpy(float)
    keep = (eJ / EPS_J_AT >= MIN_FREQUENCY) & (v <= TV_MAX)
    b = BOUNDS[SCORE_BOUNDS[sampler]]
    e = b.score_exponents["eps_Jacobi"]
    fit = fit_power_law(v[keep], eps_J=eJ[keep])
    ax.loglog(eJ, v, "o-", ms=4, lw=0.8, color=color, label=f"{sampler} ({SAMPLERS[sampler].kind}): slope {fit.exponents['eps_J']:+.2f}")
    what = "a deterministic sampler's bound carries eps_Jacobi linearly (HEROISM)" if e else "a stochastic sampler's bound needs only L2 accuracy: no eps_J term, exponent 0"
    notes = [f"Fitted over eps_J >= {MIN_FREQUENCY:g} eps (the high-frequency end) with TV <= {TV_MAX:g} (TV saturates at 1): {int(keep.sum())} points; {what}.",
             "TV over the whole sweep: " + ", ".join(f"{x:g}: {y:.2e}" for x, y in zip(eJ, v)) + "."]
    return Check(f"Score error: TV vs eps_J, {sampler} (T={int(sub['T'].iloc[0])}, eps = {EPS_J_AT:g})", b.citation, b.formula, "eps_J", e, fit, verdict(fit, "eps_J", e), "figures/score_error.png", cfg, "", notes)


def _joint_check(df, ax, cfg):
    sub = _tv(df, "joint", "ddpm")
    T, eps, v = sub["T"].to_numpy(float), sub["eps"].to_numpy(float), sub["value"].to_numpy(float)
    fit = fit_two_terms(v, T, eps)
    b = BOUNDS["li_yan_ddpm"]
    for i, t in enumerate(sorted(set(T))):
        m = T == t
        ax.plot(np.where(eps[m] > 0, eps[m], 2e-3), v[m], "o", ms=4, color=f"C{i}", label=f"T = {t:g}")
        xs = np.geomspace(min(eps[eps > 0]), max(eps), 30)
        ax.plot(xs, two_terms_predict(fit, np.full_like(xs, t), xs), "-", lw=0.8, color=f"C{i}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = sorted({2e-3} | set(eps[eps > 0].tolist()))
    ax.set_xticks(ticks, ["0" if t == 2e-3 else f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_locator(NullLocator())
    lo, hi = fit.ci["T"]
    notes = [f"Joint model TV ~ C1 T^a + C2 eps^b: a = {fit.exponents['T']:+.3f} [{lo:+.3f}, {hi:+.3f}] (bound -1 with log^3 T), b = {fit.exponents['eps']:+.3f} (the row gives -b, the exponent of 1/eps); C1 = {np.exp(fit.log_prefactor):.3g}, C2 = {np.exp(fit.extra['log_C2']):.3g}; residual s^2 on log TV {fit.chi2_red:.2e}.",
             "eps = 0 is drawn at eps = 0.002. Li & Yan's score term is eps sqrt(log T): over this T range sqrt(log T) changes by a factor of "
             f"{np.sqrt(np.log(T.max()) / np.log(T.min())):.2f}, which the additive model does not resolve."]
    lo_b, hi_b = fit.ci["eps"]
    in_inv = dataclasses.replace(fit, exponents={"inv_eps": -fit.exponents["eps"], "T": fit.exponents["T"]}, ci={"inv_eps": (-hi_b, -lo_b), "T": fit.ci["T"]})
    e = -b.score_exponents["eps_score"]
    return Check("Score error: joint fit TV ~ C1 T^a + C2 eps^b, ddpm (exponent of 1/eps: -b)", b.citation, b.formula, "inv_eps", e, in_inv, verdict(in_inv, "inv_eps", e), "figures/score_error.png", cfg + f"; T in {sorted({int(t) for t in T})}", "", notes)


def checks(df: pd.DataFrame, figures_dir: str, profile: str) -> list[Check]:
    """Fits, verdicts and the figure of the score-error terms."""
    cfg = f"profile {profile}; 1-D target 0.4 N(-1, 0.25) + 0.6 N(1, 0.16); linear VP 0.1..20; start q_T; exact laws with the perturbed score"
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8), layout="constrained")
    realised = _realised_note(df)
    def swept(kind):  # the samplers of a sweep present in the results, with their colours
        return [(s, f"C{i}") for i, s in enumerate(SAMPLERS_SWEPT) if ((df["kind"] == kind) & (df["sampler"] == s)).any()]

    out = [_eps_check(df, s, axes[0], c, cfg, realised) for s, c in swept("eps")]
    out += [_eps_J_check(df, s, axes[1], c, cfg) for s, c in swept("eps_J")]
    out.append(_joint_check(df, axes[2], cfg))
    axes[0].set(xlabel="eps (L2 score error), eps_J = eps", ylabel="TV(output, target)", title="TV against the L2 score error (dotted: eps = 0)")
    axes[1].set(xlabel=f"eps_J (Jacobian error), eps = {EPS_J_AT:g}", ylabel="TV(output, target)", title="TV against the Jacobian error")
    axes[2].set(xlabel="eps", ylabel="TV(output, target)", title="DDPM: TV ~ C1 T^a + C2 eps^b (lines: the joint fit)")
    for ax in axes:
        ax.legend(fontsize=6)
    save_figure(fig, figures_dir, NAME)
    return out
