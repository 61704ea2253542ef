"""Claim D: continuous-time consistency models (sCM, Lu & Song 2024): stable training with
the tangent normalisation and warmup, and 2-step sampling better than 1-step.

Target: the ring of eight Gaussians scaled to coordinate standard deviation 0.5 = sigma_d
(radius 0.7, variance 0.0049), as the paper normalises its data. sCD distils the exact
TrigFlow velocity; sCT uses the conditional velocity cos t Z - sin t X0. The ablation switches
off one stabiliser at a time (tangent normalisation, tangent warmup, adaptive weighting) or
both of the first two, at two time embeddings: 2 sinusoids (1, 2 rad) and, in the full
profile, 6 (up to 32 rad; the paper reports large Fourier scales as a source of instability). Each run records whether
training diverged (a non-finite loss or parameter), the loss and tangent-norm curves, and the
1- and 2-step W2 to the target (exact OT, with the floor) beside Heun's with 64 steps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy import stats

from cmtheory.consistency import block_means, scm_sample, train_scm
from cmtheory.report import Check, plt, save_figure
from cmtheory.samplers.ode import heun, karras_grid
from cmtheory.targets import ring_mixture
from experiments._neural import EVAL_N, comparison_verdict, failure_rate, log_rows, paired_difference_ci, w_row

NAME = "scm"
CLAIM = "D: sCM trains stably with tangent normalisation and warmup; 2 steps beat 1 (Lu & Song 2024)"
CITATION = "Lu & Song 2024, Simplifying, stabilizing and scaling continuous-time consistency models (arXiv 2410.11081)"
TARGET = ring_mixture(8, 0.7, 0.0049)
SIGMA_D = 0.5
VARIANTS = {
    "full": {},
    "no_normalisation": {"normalise": False},
    "no_warmup": {"warmup": 0},
    "neither": {"normalise": False, "warmup": 0},
    "no_adaptive": {"adaptive": False},
}
BLOW_UP = 10.0  # a run whose 1-step W2 exceeds BLOW_UP x Heun's is counted as failed
# quick: two seeds per variant at 2000 steps with the 2-sinusoid embedding (three seeds cost
# 247 CPU-s at 12cd8ed and the quick profile took 14.6 min; three seeds at 3000 steps, or with
# the 6-sinusoid variants too, do not fit the quick profile's 15 minutes);
# full: five seeds at 6000 steps with both embeddings. Measured with three seeds each
# (commits b137b9d and 12bff7d): "as in the paper" for stability at 2000 and 3000 steps (0/3
# failures; 1-step W2 0.131 and 0.119 against Heun's 0.082 and 0.088). 2 steps minus 1 step
# over the 2-sinusoid runs: +0.0083 [+0.0021, +0.0145] at 2000 steps and +0.0059 [+0.0018,
# +0.0100] at 3000, so "opposite of the paper" at both budgets; the 6-sinusoid runs scatter so
# widely (+0.32 [-0.38, +1.02] at 3000 steps) that with them in the pool the verdict read "no
# significant difference". With 6 sinusoids, scd/full failed 0/3 at 2000 steps, 1/3 at 3000.
PROFILES = {
    "quick": {"iterations": 2000, "reps": 2, "frequencies": [2]},
    "full": {"iterations": 6000, "reps": 5, "frequencies": [2, 6]},
}


def configs(profile: str) -> list[dict]:
    p = PROFILES[profile]
    out = [{"mode": "scd", "variant": v, "frequencies": f, "iterations": p["iterations"], "rep": r} for f in p["frequencies"] for v in VARIANTS for r in range(p["reps"])]
    return out + [{"mode": "sct", "variant": "full", "frequencies": 2, "iterations": p["iterations"], "rep": r} for r in range(p["reps"])]


def verify_configs(profile: str) -> list[dict]:
    """A cheap subset for ``cmtheory checks --verify``: one sCD run with every stabiliser."""
    return [c for c in configs(profile) if c["mode"] == "scd" and c["variant"] == "full" and c["frequencies"] == 2 and c["rep"] == 0]


def run(config: dict, seed: int, device: str = "cpu") -> list[dict]:
    g = torch.Generator(device=device).manual_seed(seed)
    kwargs = {"normalise": True, "warmup": config["iterations"] // 6, "adaptive": True, **VARIANTS[config["variant"]]}
    model, log = train_scm(TARGET, config["mode"], iterations=config["iterations"], sigma_data=SIGMA_D, frequencies=config["frequencies"], generator=g, **kwargs)
    ge = torch.Generator(device=device).manual_seed(seed + 1)
    ref, ref2 = TARGET.sample(EVAL_N, ge), TARGET.sample(EVAL_N, ge)
    ode = heun(TARGET.denoiser, karras_grid(80.0, 0.002, 64), 80 * torch.randn(EVAL_N, 2, generator=ge, dtype=torch.float64, device=device))
    rows = [w_row(f"w2_{k}_step", scm_sample(model, EVAL_N, k, ge), ref, ref2) for k in (1, 2)] if not log.diverged else []
    rows.append(w_row("w2_heun64", ode, ref, ref2))
    it, tn = block_means(log.extra["tangent_norm"], 50)
    rows += [{"metric": "tangent_norm", "iteration": int(i), "value": float(v)} for i, v in zip(it, tn)]
    return rows + log_rows(log, 50)


def _outcome(g: pd.DataFrame) -> pd.Series:
    """Per run: diverged, failed (diverged or 1-step W2 > BLOW_UP x Heun's), W2s, peak tangent norm."""
    val = g.set_index("metric")["value"]
    heun_w2 = float(val.get("w2_heun64", np.nan))
    w1 = float(val.get("w2_1_step", np.inf))
    tn = g[g["metric"] == "tangent_norm"]["value"]
    return pd.Series({"diverged": bool(val.get("diverged", 0.0)), "failed": bool(val.get("diverged", 0.0)) or not (w1 <= BLOW_UP * heun_w2), "w2_1": w1, "w2_2": float(val.get("w2_2_step", np.inf)), "heun": heun_w2, "tangent_peak": float(tn.max()) if len(tn) else np.nan})


def checks(df: pd.DataFrame, figures_dir: str, profile: str) -> list[Check]:
    runs = df[df["metric"] != "loss"].groupby(["mode", "variant", "frequencies", "rep"])[["metric", "value"]].apply(_outcome).reset_index()
    cfg = f"profile {profile}; target ring of 8 Gaussians, radius 0.7, variance 0.0049 (coordinate std 0.5 = sigma_d); MLP 3x128; Adam lr 1e-3, batch 256; P_mean -1.0, P_std 1.4; warmup H = iterations/6; t_max = arctan(80/sigma_d), t_mid = 1.1"
    dep = "toy analogue: W2 to a 2-D target instead of FID; an MLP instead of a U-Net; sCD distils the exact velocity"
    table = ["| mode | variant | time embedding | seed | diverged | 1-step W2 | 2-step W2 | Heun-64 W2 | peak mean tangent norm |", "|---|---|---|---|---|---|---|---|---|"]
    for _, r in runs.sort_values(["mode", "frequencies", "variant", "rep"]).iterrows():
        table.append(f"| {r['mode']} | {r['variant']} | {r['frequencies']} sinusoids | {r['rep']} | {'yes' if r['diverged'] else 'no'} | {r['w2_1']:.4g} | {r['w2_2']:.4g} | {r['heun']:.4g} | {r['tangent_peak']:.4g} |")
    out = []
    stable = runs[(runs["mode"] == "scd") & (runs["variant"] == "full") & (runs["frequencies"] == 2)]
    ok = (~stable["failed"]).all()
    w1_ok = stable.loc[~stable["failed"], "w2_1"]
    out.append(Check("D: sCD with tangent normalisation and warmup trains without divergence", CITATION, "stable continuous-time training with the stabilisers", "variant", None, None,
                     "as in the paper" if ok else "opposite of the paper", "figures/scm.png", cfg, dep,
                     [f"Failed = diverged or 1-step W2 above {BLOW_UP:g}x Heun-64's. The verdict rests on {len(stable)} seeds: 'as in the paper' only if none fails."],
                     f"failed {failure_rate(stable['failed'])} of {len(stable)} seeds (Wilson 95%); 1-step W2 {w1_ok.mean():.4g} +- {w1_ok.sem():.2g} (mean +- se over seeds), Heun-64 {stable['heun'].mean():.4g}"))
    failed = runs.groupby(["mode", "variant", "frequencies"])["failed"]
    summary = "; ".join(f"{m}/{v} ({f}): {failure_rate(x)} failed" for (m, v, f), x in failed)
    peaks = runs[runs["mode"] == "scd"].groupby("frequencies")["tangent_peak"].median()
    peak_note = "Median over sCD variants of the peak mean tangent norm: " + ", ".join(f"{f} sinusoids {v:.3g}" for f, v in peaks.items()) + "."
    seeds = int(runs.groupby(["mode", "variant", "frequencies"]).size().min())
    peak_note += f" Failure rates over {seeds} seeds per variant, with Wilson 95% intervals: with so few seeds an interval is wide, and a rate is a measurement only where intervals separate."
    out.append(Check("D: sCD stabiliser ablation (recorded, no assertion)", CITATION, "without the stabilisers training is unstable", "variant", None, None, "recorded", "figures/scm.png", cfg, dep,
                     [peak_note, "Per-run outcomes:", "", *table, ""], summary))
    ok_runs = runs[~runs["failed"] & np.isfinite(runs["w2_2"])]
    diff, lo, hi = paired_difference_ci(ok_runs["w2_2"], ok_runs["w2_1"])
    verdict = comparison_verdict(lo, hi, -1) if np.isfinite(lo) else "inconclusive (fewer than 2 runs)"
    out.append(Check("D: 2-step vs 1-step sampling (W2)", CITATION, "2-step sampling improves on 1-step (FID 2.06 vs higher on CIFAR-10)", "steps", None, None, verdict, "figures/scm.png", cfg, dep,
                     ["Paired over every run that did not fail (all modes, variants, embeddings and seeds): both samplers evaluate the same trained model; t interval."], f"2-step minus 1-step W2: {diff:+.4g} [{lo:+.4g}, {hi:+.4g}] over {len(ok_runs)} runs"))
    _figure(df, runs, figures_dir)
    return out


def _figure(df, runs, figures_dir):
    """Sample quality per variant (every seed a point, the mean with a 95% t interval beside it, the
    W2 estimator's target-vs-target floor shaded), the tangent norms and the loss curves."""
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6), layout="constrained")
    groups = list(runs.groupby(["mode", "variant", "frequencies"], sort=True))
    for j, (steps, column, c) in enumerate([(1, "w2_1", "C0"), (2, "w2_2", "C1")]):
        for i, (_, g) in enumerate(groups):
            v = g[column].replace(np.inf, np.nan).dropna()
            x = i + (j - 0.5) * 0.3
            axes[0].plot(np.full(len(v), x), v, ".", color=c, alpha=0.5, ms=5)
            if len(v) > 1:
                half = stats.t.ppf(0.975, len(v) - 1) * v.sem()
                axes[0].errorbar(x + 0.08, v.mean(), yerr=half, fmt="_", color=c, ms=10, capsize=3, label=f"{steps} step{'s' * (steps > 1)}: seeds, mean with 95% CI" if i == 0 else None)
    floor = df.loc[df["metric"] == "w2_1_step", "floor"].astype(float)
    axes[0].axhspan(0, floor.mean(), color="0.85", label=f"estimator floor (target vs target), {floor.mean():.3f}")
    axes[0].axhline(runs["heun"].mean(), color="k", ls="--", lw=1, label="Heun, 64 steps")
    axes[0].set_xticks(range(len(groups)), [f"{m}\n{v.replace('no_', 'no ')}\n{f} sin." for (m, v, f), _ in groups], fontsize=7)
    axes[0].set(ylabel="W2 to target", title="sample quality per variant (missing point: diverged)", ylim=(0, None))
    for (mode, variant, freq), g in df[df["metric"] == "tangent_norm"].groupby(["mode", "variant", "frequencies"]):
        c = g.groupby("iteration")["value"].mean()
        axes[1].plot(c.index, c.values, ls="-" if freq == 2 else "--", lw=1, label=f"{mode}/{variant}/{freq}")
        loss = df[(df["metric"] == "loss") & (df["mode"] == mode) & (df["variant"] == variant) & (df["frequencies"] == freq)].groupby("iteration")["value"].mean()
        axes[2].plot(loss.index, loss.values, ls="-" if freq == 2 else "--", lw=1, label=f"{mode}/{variant}/{freq}")
    axes[1].set(yscale="log", xlabel="iteration", ylabel="mean ||g|| before normalisation (mean over seeds)", title="tangent norm")
    axes[2].set(xlabel="iteration", ylabel="adaptive-weighted loss (mean over seeds)", title="loss curves")
    for ax in axes:
        ax.legend(fontsize=7)
    save_figure(fig, figures_dir, NAME)
