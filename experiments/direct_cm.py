"""Claim B: Direct CM lowers the ODE-solving error but gives worse samples than consistency
distillation (Vouitsis et al. 2024).

Toy analogue with an exact teacher: the 2-D ring of eight Gaussians (radius 2, variance
0.04), the 18-step Karras grid from sigma 80 to 0.002, DDIM as the teacher solver (as in the
paper's code), stop-gradient targets without EMA, plain MSE with n uniform. Each method
gets the same network, budget and seed. Measured from the same initial noise
:math:`y_N = 80Z`:

* ODE-solving error: :math:`E\\|f(y_N) - \\Phi(y_N)\\|^2` against the teacher's DDIM solve
  (what Direct CM regresses on) and against the exact flow map (DOP853, rtol 1e-8);
* sample quality: W2 of the one-step samples to the target (exact OT, with the floor), beside
  the teacher's own W2.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from cmtheory.consistency import consistency_sample, train_consistency
from cmtheory.report import Check, plt, save_figure
from cmtheory.samplers.ode import ddim, karras_grid, reference_flow_map
from cmtheory.targets import ring_mixture
from experiments._neural import EVAL_N, comparison_verdict, difference_ci, log_rows, mse_row, w_row

NAME = "direct_cm"
CLAIM = "B: Direct CM lowers the ODE error but worsens samples, vs CD (Vouitsis et al. 2024)"
CITATION = "Vouitsis et al. 2024, Inconsistencies in consistency models: better ODE solving does not imply better samples (arXiv 2411.08954)"
TARGETS = {"ring8": ring_mixture(8, 2.0, 0.04)}
SIGMA_MAX, SIGMA_MIN, N = 80.0, 0.002, 18
PROFILES = {
    "quick": {"iterations": [4000], "reps": 3},
    "full": {"iterations": [2000, 4000, 8000], "reps": 5},
}


def configs(profile: str) -> list[dict]:
    p = PROFILES[profile]
    return [{"target": t, "model": m, "iterations": it, "rep": r} for t in TARGETS for m in ("cd", "direct") for it in p["iterations"] for r in range(p["reps"])]


def verify_configs(profile: str) -> list[dict]:
    """A cheap subset for ``cmtheory checks --verify``: one CD run (a neural run: identical only
    on the same kind of machine and thread count, else compared within its CI)."""
    return [c for c in configs(profile) if c["model"] == "cd" and c["rep"] == 0][:1]


def run(config: dict, seed: int, device: str = "cpu") -> list[dict]:
    target = TARGETS[config["target"]]
    grid = karras_grid(SIGMA_MAX, SIGMA_MIN, N)
    g = torch.Generator(device=device).manual_seed(seed)
    model, log = train_consistency(target, grid, config["model"], iterations=config["iterations"], generator=g)
    ge = torch.Generator(device=device).manual_seed(seed + 1)
    z = SIGMA_MAX * torch.randn(EVAL_N, target.d, generator=ge, dtype=torch.float64, device=device)
    with torch.no_grad():
        y = model(z.float(), SIGMA_MAX).double()
    teacher = ddim(target.denoiser, grid, z)
    exact = reference_flow_map(target.denoiser, z, SIGMA_MAX, SIGMA_MIN, rtol=1e-8, atol=1e-8)
    ref, ref2 = target.sample(EVAL_N, ge), target.sample(EVAL_N, ge)
    rows = [
        mse_row("ode_error_teacher", y, teacher),
        mse_row("ode_error_exact", y, exact),
        w_row("w2", y, ref, ref2),
        w_row("w2_two_step", consistency_sample(model, EVAL_N, [SIGMA_MAX, 0.8], ge), ref, ref2),
        w_row("w2_teacher", teacher, ref, ref2),
        w_row("w2_exact_flow", exact, ref, ref2),
    ]
    return rows + log_rows(log)


def checks(df: pd.DataFrame, figures_dir: str, profile: str) -> list[Check]:
    out = []
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), layout="constrained")
    it_main = max(PROFILES[profile]["iterations"]) if profile in PROFILES else int(df["iterations"].max())
    for name in TARGETS:
        sub = df[df["target"] == name]
        main = sub[sub["iterations"] == it_main]
        for k, method in enumerate(("cd", "direct")):
            m = sub[sub["model"] == method]
            ode = m[m["metric"] == "ode_error_exact"].groupby("iterations")["value"]
            w2 = m[m["metric"] == "w2"].groupby("iterations")["value"]
            axes[0].errorbar(ode.mean().index, ode.mean(), yerr=ode.sem().fillna(0), fmt="o-", color=f"C{k}", capsize=2, label=f"{method}")
            axes[1].errorbar(w2.mean().index, w2.mean(), yerr=w2.sem().fillna(0), fmt="o-", color=f"C{k}", capsize=2, label=f"{method}")
            loss = m[(m["metric"] == "loss") & (m["iterations"] == it_main)].groupby("iteration")["value"].mean()
            axes[2].plot(loss.index, loss.values, color=f"C{k}", label=f"{method} (mean over seeds)")
        for metric, ls in (("w2_teacher", "--"), ("w2_exact_flow", ":")):
            axes[1].axhline(main[main["metric"] == metric]["value"].mean(), color="k", ls=ls, lw=1, label=metric.replace("w2_", "") + " W2")
        floor = main[main["metric"] == "w2"]["floor"].mean()
        axes[1].axhline(floor, color="grey", lw=1, label="target-vs-target floor")
        cfg = f"profile {profile}; target {name}; Karras grid {SIGMA_MAX}..{SIGMA_MIN}, N={N}; DDIM teacher with exact denoiser; stop-gradient; MLP 3x128; {it_main} Adam steps, lr 1e-3, batch 256; seeds per method: {main[main['metric'] == 'w2'].groupby('model').size().to_dict()}"
        dep = "toy analogue: exact-score teacher and exact flow map instead of a pretrained image model; W2 to the target instead of FID"
        for metric, label, paper_sign in (("ode_error_exact", "ODE-solving error E||f(y_N) - Phi(y_N)||^2 (exact flow)", -1), ("w2", "sample quality, one-step W2 to the target", +1)):
            a = main[(main["metric"] == metric) & (main["model"] == "direct")]["value"].to_numpy(float)
            b = main[(main["metric"] == metric) & (main["model"] == "cd")]["value"].to_numpy(float)
            diff, lo, hi = difference_ci(a, b)
            verdict = comparison_verdict(lo, hi, paper_sign)
            summary = f"Direct {a.mean():.4g} vs CD {b.mean():.4g}; difference {diff:+.4g} [{lo:+.4g}, {hi:+.4g}] over {a.size} + {b.size} seeds"
            notes = [f"Paper: Direct CM has the {'lower' if paper_sign < 0 else 'higher (worse)'} value. Welch 95% interval over seeds (unpaired: every run has its own seed); the verdict rests on {a.size} Direct CM and {b.size} CD seeds."]
            if metric == "w2":
                notes.append(f"Teacher DDIM W2 {main[main['metric'] == 'w2_teacher']['value'].mean():.4g}, exact flow W2 {main[main['metric'] == 'w2_exact_flow']['value'].mean():.4g}, floor {floor:.4g} (5 batches of 1000).")
                t = main[(main["metric"] == "ode_error_teacher")].groupby("model")["value"].mean()
                notes.append(f"ODE error against the teacher's DDIM solve: Direct {t.get('direct', np.nan):.4g}, CD {t.get('cd', np.nan):.4g}.")
            out.append(Check(f"B: {label}, Direct CM vs CD ({name})", CITATION, "Direct CM: lower ODE-solving error, significantly worse samples", "model", None, None, verdict, "figures/direct_cm.png", cfg, dep, notes, summary))
    axes[0].set(xscale="log", yscale="log", xlabel="training iterations", ylabel="E||f(y_N) - Phi(y_N)||^2", title="ODE-solving error (exact flow)")
    axes[1].set(xscale="log", yscale="log", xlabel="training iterations", ylabel="W2 to target", title="one-step sample quality")
    axes[2].set(yscale="log", xlabel="iteration", ylabel="training loss", title=f"loss curves ({it_main} steps)")
    for ax in axes:
        ax.legend(fontsize=6)
    save_figure(fig, figures_dir, NAME)
    return out
