"""Claim A: consistency training needs T ~ d^(5/2)/eps steps (Li, Huang & Wei 2024).

The ideal recursion (zero learning error, cmtheory.consistency.ideal) isolates the pure
discretisation error of the one-step sampler f_T(X_T) against X_1: W2 as a function of T,
for a 1-D Gaussian (closed form) and a bimodal mixture (grid quadrature), extended to d
dimensions as product targets (W2 multiplies by sqrt(d) exactly). Schedule: linear VP,
beta 0.1..40 (docs/papers.md).

The eps_F term: the same recursion with a fixed per-step error field delta_t of L2(q_t) size eta
at every step (cmtheory.samplers.scores.controlled_perturbation: a cosine of frequency
omega = eps_J / eps, a constant for omega = 0), W2 between its one-step output and the ideal one
(cmtheory.consistency.ideal_ct_deviation) against eps_F = sum_t ||delta_t||_{L2(q_t)}, over T at
fixed eta: how much of the summed per-step errors reaches the output. The exact definitions of
the theorem's eps and eps_F were not retrievable; this is the toolkit's reconstruction.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from cmtheory.consistency import ideal_ct_deviation, ideal_ct_error
from cmtheory.processes import linear_schedule
from cmtheory.rates import fit_power_law, log_slack, steps_log_slack, steps_to_eps, verdict
from cmtheory.report import Check, plt, rate_axes, save_figure
from cmtheory.samplers.scores import controlled_perturbation
from cmtheory.targets import GaussianMixture
from cmtheory.theory import BOUNDS

NAME = "consistency_training"
CLAIM = "A: ideal consistency training, W(f_T(X_T), X_1) ~ d^(5/2) log^5 T / T"
TARGETS = {
    "gaussian": GaussianMixture([1.0], [[1.5]], [0.25]),
    "bimodal": GaussianMixture([0.5, 0.5], [[-1.0], [1.0]], [0.1, 0.1]),
}
DIMS = [1, 4, 16, 64]
EPS = [0.05, 0.02, 0.01]
# The full profile takes the bimodal recursion (not yet asymptotic over the quick range: its
# local slope drifts from -0.43 to -0.46) to T = 25600, where it costs about 4 minutes a config
# at 16000 cells; the Gaussian stops at 12800, where the N(0, 1) start's mismatch with q_T
# (sqrt(abar_T) = e^-10 for this schedule) begins to bend its curve.
PROFILES = {
    "quick": {"T": {"gaussian": [100, 200, 400, 800, 1600, 3200], "bimodal": [100, 200, 400, 800, 1600, 3200]}, "cells": 8000, "eps_F_T": [100, 200, 400, 800]},
    "full": {"T": {"gaussian": [100, 200, 400, 800, 1600, 3200, 6400, 12800], "bimodal": [100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600]}, "cells": 16000, "eps_F_T": [100, 200, 400, 800, 1600, 3200]},
}
ETA = 1e-4  # per-step L2 size of the consistency error field
OMEGAS = [1.0, 4.0]  # its frequency eps_J / eps: how much of it the posterior expectations average out
DEVIATION_CELLS = 4000  # the deviation's grid error is below 1e-6 of its value at 4000 cells
REACH = -0.9  # the bimodal row says how far T must go for its local slope to reach this


def configs(profile: str) -> list[dict]:
    p = PROFILES[profile]
    ideal = [{"target": name, "T": T, "cells": p["cells"]} for name in TARGETS for T in p["T"][name]]
    return ideal + [{"target": name, "T": T, "cells": DEVIATION_CELLS, "eta": ETA, "omega": w} for name in TARGETS for w in OMEGAS for T in p["eps_F_T"]]


def verify_configs(profile: str) -> list[dict]:
    """A cheap subset for ``cmtheory checks --verify``: each target at its smallest T."""
    return [c for c in configs(profile) if c["T"] == PROFILES[profile]["T"][c["target"]][0] and c.get("omega", OMEGAS[0]) == OMEGAS[0]]


def run(config: dict, seed: int, device: str = "cpu") -> list[dict]:
    """W2 of the ideal one-step sampler (W1 <= W2), in d = 1 and on the product targets; deterministic."""
    target = TARGETS[config["target"]]
    sched = linear_schedule(config["T"], 0.1, 40.0)
    if "omega" in config:
        error = controlled_perturbation(target, config["eta"], config["omega"] * config["eta"]).error
        dev = ideal_ct_deviation(target, sched, error, grid_cells=config["cells"])
        return [{"metric": "deviation", "d": 1, "value": dev.value, "se": dev.se, "method": dev.method, "coupling": dev.extra["coupling"], "eps_F": dev.extra["sum_errors"]}]
    w2 = ideal_ct_error(target, sched, grid_cells=config["cells"])
    # se: the grid's own error (0 for the Gaussian closed form); the fits are unweighted
    return [{"metric": "w2", "d": d, "value": math.sqrt(d) * w2.value, "se": math.sqrt(d) * w2.se, "method": w2.method} for d in DIMS]


def checks(df: pd.DataFrame, figures_dir: str, profile: str) -> list[Check]:
    b = BOUNDS["li_huang_wei_ct"]
    cfg = f"profile {profile}; linear VP beta 0.1..40; output f_T(X_T), X_T ~ N(0, I), against X_1"
    out = []
    fig, axes = plt.subplots(2, 2, figsize=(13, 10), layout="constrained")
    axes = axes.ravel()
    for i, name in enumerate(TARGETS):
        sub = df[(df["target"] == name) & (df["metric"] == "w2") & (df["d"] == 1)].sort_values("T")
        T, v = sub["T"].to_numpy(float), sub["value"].to_numpy(float)
        fit = fit_power_law(v, T=T)
        rate_axes(axes[0], T, v, None, fit, "T", b.exponents["T"], label=name, color=f"C{i}")
        slack = log_slack(fit, "T", b.log_powers["T"])
        notes = [f"The bound's log^5 T factor adds {slack:.2f} to its exponent over this range: the band is [-1, {b.exponents['T'] + slack:+.2f}]."]
        notes.append("T x W2 by T: " + ", ".join(f"{int(t)}: {t * w:.3g}" for t, w in zip(T, v)) + " (constant for an exact T^-1). The CI of an exact computation measures only how far the curve is from a pure power law over the range, so a slowly growing T x W2, a log factor, puts -1 outside it.")
        check = Check(f"A: W2 vs T, ideal CT, {name} (d=1)", b.citation, b.formula, "T", b.exponents["T"], fit, verdict(fit, "T", b.exponents["T"], slack), "figures/consistency_training.png", cfg + f"; T in {[int(t) for t in T]}",
                      "W2 reported (W1 <= W2); zero learning error (eps = eps_F = 0)", notes)
        if name == "bimodal" and check.regime is not None:
            x, lo, hi = check.regime.reach(REACH)
            notes.append(f"Bimodal: the slope is far flatter than -1 over this range; the bound (L_f^3 log^5 T / T, L_f large for separated modes) allows it. Extrapolating the drift of the local slope, it would reach {REACH} at T ~ {x:.2g} (CI {lo:.2g} to {hi:.2g}): the T^-1 of the Gaussian case is out of reach of any computation.")
        out.append(check)
        T_fix = 800
        dsub = df[(df["target"] == name) & (df["metric"] == "w2") & (df["T"] == T_fix)].sort_values("d")
        dfit = fit_power_law(dsub["value"].to_numpy(float), d=dsub["d"].to_numpy(float))
        rate_axes(axes[1], dsub["d"], dsub["value"], None, dfit, "d", b.exponents["d"], label=f"{name}, T={T_fix}", color=f"C{i}")
        out.append(Check(f"A: W2 vs d, ideal CT, {name} product target (T={T_fix})", b.citation, b.formula, "d", b.exponents["d"], dfit, verdict(dfit, "d", b.exponents["d"]), "figures/consistency_training.png", cfg + f"; d in {DIMS}",
                         notes=["Product targets: W2 = sqrt(d) x the 1-D W2 exactly, so the d exponent is 1/2 by construction; the bound's d^(5/2) is worst case over targets."]))
        rows = []
        for d in DIMS:
            s = df[(df["target"] == name) & (df["metric"] == "w2") & (df["d"] == d)].sort_values("T")
            for eps in EPS:
                Ts = steps_to_eps(s["T"], s["value"], eps)
                if math.isfinite(Ts) and Ts > s["T"].min():
                    rows.append((d, eps, Ts))
        if len(rows) >= 4:
            d_, e_, T_ = map(np.array, zip(*rows))
            sfit = fit_power_law(T_, d=d_, inv_eps=1 / e_)
            axes[2].loglog(1 / e_[d_ == d_.min()], T_[d_ == d_.min()], "o-", color=f"C{i}", label=f"{name}, d={int(d_.min())}")
            T_geo = float(np.exp(np.mean(np.log(T_))))
            for var in ("d", "inv_eps"):
                e = b.steps_exponents[var]
                out.append(Check(f"A: steps to W2 <= eps, {name}: exponent of {'1/eps' if var == 'inv_eps' else 'd'}", b.citation, "T ~ d^(5/2) / eps", var, e, sfit, verdict(sfit, var, e, steps_log_slack(e, b.log_powers["T"], T_geo)), "figures/consistency_training.png", cfg + f"; eps in {EPS}"))
    out += _eps_F_checks(df, b, cfg, axes[3])
    axes[0].set(xlabel="T (discretisation levels)", ylabel="W2(f_T(X_T), X_1)", title="ideal consistency training, d = 1")
    axes[1].set(xlabel="d", ylabel="W2", title="product targets")
    axes[2].set(xlabel="1/eps", ylabel="T* (steps to W2 <= eps)", title="steps to accuracy")
    for ax in axes:
        ax.legend(fontsize=6)
    save_figure(fig, figures_dir, NAME)
    return out


def _eps_F_checks(df: pd.DataFrame, b, cfg: str, ax) -> list[Check]:
    """W2 between the perturbed and the ideal one-step output against eps_F = sum of the per-step
    errors, one fit per target and frequency; the contraction bound W2 <= eps_F drawn as y = x."""
    out = []
    dev = df[df["metric"] == "deviation"]
    if dev.empty:  # a table made before these rows existed
        return out
    e = b.score_exponents["eps_F"]
    for i, (name, omega) in enumerate((n, w) for n in TARGETS for w in sorted(dev["omega"].dropna().unique())):
        sub = dev[(dev["target"] == name) & (dev["omega"] == omega)].sort_values("T")
        if len(sub) < 3:
            continue
        x, v, ratio = sub["eps_F"].to_numpy(float), sub["value"].to_numpy(float), (sub["value"] / sub["eps_F"]).to_numpy(float)
        fit = fit_power_law(v, eps_F=x)
        rate_axes(ax, x, v, None, fit, "eps_F", None, label=f"{name}, eps_J/eps = {omega:g}", color=f"C{i}")
        worst = float(ratio.max())
        # the bound carries eps_F with constant 1, so the verdict is the ratio's, not the exponent's:
        # an exact computation's CI only measures how far W2 is from a pure power law in eps_F
        word = "as in the paper" if worst <= 1 else "opposite of the paper"
        notes = [
            f"Per-step error eta = {sub['eta'].iloc[0]:g} in L2(q_t) at every step t = 2..T, T in {[int(t) for t in sub['T']]}; eps_F = sum_t ||delta_t||_{{L2(q_t)}} by quadrature.",
            "W2 / eps_F by T: " + ", ".join(f"{int(t)}: {r:.4f}" for t, r in zip(sub["T"], ratio)) + f". The contraction bound (each posterior expectation K_t is an L2 contraction) is W2 <= eps_F: the largest ratio is {worst:.4f}. Verdict: 'as in the paper' when every ratio is at most 1 (the additive eps_F with constant 1), else 'opposite of the paper'; the exponent is reported, not judged (exact values: its CI measures only the curvature of W2 in eps_F).",
            "Per-step errors add up: at fixed eta the deviation grows like T, with a T-independent fraction reaching the output; for the theorem's T-independent eps + eps_F, a learned f_t must be accurate to about eps_F / T per step. The deviation is exactly linear in the error field (the recursion is linear in f), so its size in eta is not tested here, only its accumulation over T.",
        ]
        out.append(Check(f"A: W2 deviation vs eps_F, ideal CT + per-step error, {name}, eps_J/eps = {omega:g}", b.citation, b.formula, "eps_F", e, fit, word, "figures/consistency_training.png",
                         cfg + "; W2(f'_T(X_T), f_T(X_T)) of quantile functions at 20000 levels", "eps_F reconstructed as the sum of per-step L2 errors (the paper's definition was not retrieved)", notes))
    xs = np.geomspace(dev["eps_F"].min(), dev["eps_F"].max(), 10)
    ax.plot(xs, xs, "k--", lw=1, label="contraction bound W2 = eps_F")
    ax.set(xlabel="eps_F = sum of per-step L2 errors (T varies)", ylabel="W2(perturbed output, ideal output)", title="consistency errors: what reaches the output")
    return out
