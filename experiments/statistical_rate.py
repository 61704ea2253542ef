"""Claim C: statistical rates of consistency models from n samples (Dou et al. 2024).

For d in a grid, n training points are drawn from a product target (each coordinate
0.5 N(-1, 0.09) + 0.5 N(1, 0.09)); the empirical measure of those points is the data law, and
its smoothed denoiser (closed form, :class:`Empirical`) is the exact teacher of consistency
distillation ("training from the empirical measure", the isolation setting). The one-step
W1 of the trained model to the true target is measured against n, beside the W1 of the
empirical measure itself (resampled to the same evaluation size), which is the n^(-1/d)
floor of the isolation bound, and the estimator's own target-vs-target floor. The grids start
at d = 2: the empirical measure's W1 decays as n^(-1/2) in d = 1 and as (log n / n)^(1/2) in
d = 2 (Fournier & Guillin 2015), so n^(-1/d) is the rate only from d = 2 on (with a log). A config with
n_train = 0 trains on the population (the true target as data law and teacher): its W1 is the
learning and discretisation error that no n can remove.

Training: consistency distillation with an EMA target (0.99) and a cosine learning-rate
decay, the exact DDIM teacher on the 18-step Karras grid; the same budget for every n.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from cmtheory.consistency import consistency_sample, train_consistency
from cmtheory.rates import fit_power_law, log_slack, verdict
from cmtheory.report import Check, plt, rate_axes, save_figure
from cmtheory.samplers.ode import karras_grid
from cmtheory.targets import Empirical, ProductMixture
from cmtheory.theory import BOUNDS, n_exponent
from experiments._neural import log_rows, w_row

NAME = "statistical_rate"
CLAIM = "C: one-step W1 vs training-set size n, against n^(-1/d) and n^(-1/(2(d+5))) (Dou et al. 2024)"
SIGMA_MAX, SIGMA_MIN, N = 80.0, 0.002, 18
EMA = 0.99
EVAL = {1: 100000, 2: 4000, 3: 4000, 4: 4000, 8: 4000}  # evaluation samples: 5 batches in d = 1 (sorting), 2 exact-OT batches for d > 1
PROFILES = {
    # two seeds per point (three cost 378 CPU-s at 6bf508f, a fifth of the quick profile), n up
    # to 2048 (a run at n = 4096 took 37 s, its teacher holds n atoms) and 1500 steps keep the
    # quick profile within 15 minutes. Measured with
    # three seeds (commit b137b9d): the model rows read "inconclusive (too few points above the
    # floor)" at 2000 and at 3000 steps alike (d = 2: W1 0.47 flat in n at 2000 steps, 0.38 to
    # 0.33 at 3000; d = 4: 0.82 to 0.77 and 0.83 to 0.74): the model sits at its learning error,
    # which fewer steps only raise (paper_checks.md shows the 1500-step rows).
    "quick": {"d": [2, 4], "n": [0, 64, 512, 2048], "reps": 2, "iterations": 1500},
    "full": {"d": [2, 3, 4, 8], "n": [0, 64, 256, 1024, 4096, 16384], "reps": 4, "iterations": 6000},
}


def target(d: int) -> ProductMixture:
    return ProductMixture(d, [0.5, 0.5], [-1.0, 1.0], [0.09, 0.09])


def configs(profile: str) -> list[dict]:
    p = PROFILES[profile]
    return [{"d": d, "n_train": n, "rep": r, "iterations": p["iterations"]} for d in p["d"] for n in p["n"] for r in range(p["reps"])]


def verify_configs(profile: str) -> list[dict]:
    """A cheap subset for ``cmtheory checks --verify``: one neural run at the smallest d and n."""
    p = PROFILES[profile]
    return [c for c in configs(profile) if c["d"] == p["d"][0] and c["n_train"] == min(n for n in p["n"] if n > 0) and c["rep"] == 0]


def run(config: dict, seed: int, device: str = "cpu") -> list[dict]:
    d, n = config["d"], config["n_train"]
    g = torch.Generator(device=device).manual_seed(seed)
    truth = target(d)
    data = truth if n == 0 else Empirical(truth.sample(n, g))
    model, log = train_consistency(data, karras_grid(SIGMA_MAX, SIGMA_MIN, N), "cd", iterations=config["iterations"], ema=EMA, lr_decay=True, generator=g)
    m = EVAL[d]
    ref, ref2 = truth.sample(m, g), truth.sample(m, g)
    batches = 5 if d == 1 else 2
    rows = [w_row("w1_model", consistency_sample(model, m, [SIGMA_MAX], g), ref, ref2, p=1, batches=batches)]
    if n > 0:
        rows.append(w_row("w1_empirical", data.sample(m, g), ref, ref2, p=1, batches=batches))
    return rows + log_rows(log)


def _fit(sub: pd.DataFrame, floor=None, floor_se=None):
    """Power law in n over replicate seeds, points within 2 SE of the floor excluded (by
    default the estimator's floor); None when fewer than two n values stand above it."""
    sub = sub[np.isfinite(sub["value"].to_numpy(float))]
    fl = sub["floor"].to_numpy(float) if floor is None else np.maximum(sub["floor"].to_numpy(float), floor)
    fl_se = sub["floor_se"].to_numpy(float) if floor_se is None else np.full(len(sub), floor_se)
    try:
        return fit_power_law(sub["value"].to_numpy(float), floor=fl, floor_se=fl_se, n=sub["n_train"].to_numpy(float))
    except ValueError:
        return None


def checks(df: pd.DataFrame, figures_dir: str, profile: str) -> list[Check]:
    out = []
    dims = sorted(df["d"].unique())
    fig, axes = plt.subplots(1, len(dims), figsize=(5 * len(dims), 4.2), squeeze=False, layout="constrained")
    for ax, d in zip(axes[0], dims):
        d = int(d)
        sub = df[df["d"] == d]
        pop = sub[(sub["n_train"] == 0) & (sub["metric"] == "w1_model")]["value"]
        floor = sub[sub["metric"] == "w1_model"]["floor"].mean()
        cfg = f"profile {profile}; target: product of 0.5 N(-1, 0.09) + 0.5 N(1, 0.09) in d = {d}; CD from the empirical measure (exact smoothed teacher), EMA 0.99, cosine lr; W1 by exact OT, {EVAL[d]} evaluation samples"
        pop_note = f"Population model (n_train = 0, trained on the true target): W1 = {pop.mean():.4g} (mean of {pop.size} seeds); estimator floor {floor:.4g}. The population W1 is this model's floor (learning and discretisation error, which no n removes): points within 2 SE of it are excluded from the fit."
        for k, (metric, label) in enumerate((("w1_model", "one-step CM"), ("w1_empirical", "empirical measure"))):
            s = sub[(sub["metric"] == metric) & (sub["n_train"] > 0)].sort_values("n_train")
            # the model's floor is its own population W1 (what no n removes)
            fit = _fit(s, pop.mean(), pop.sem()) if metric == "w1_model" else _fit(s)
            mean = s.groupby("n_train")["value"].agg(["mean", "sem", "size"])
            by_n = ", ".join(f"n={int(k)}: {v:.3g}" for k, v in mean["mean"].items()) + f"; {int(mean['size'].min())} seeds each"
            rate_axes(ax, mean.index, mean["mean"], mean["sem"].fillna(0), fit, "n", n_exponent("dou_isolation", d), label=label, color=f"C{k}")
            keys = ("dou_isolation", "dou_distillation") if metric == "w1_model" else ("dou_isolation",)
            for key in keys:
                b, e = BOUNDS[key], n_exponent(key, d)
                slack = log_slack(fit, "n", 0.5) if (fit is not None and key == "dou_distillation") else 0.0
                v = verdict(fit, "n", e, slack) if fit is not None else "inconclusive (too few points above the floor)"
                notes = [pop_note] if metric == "w1_model" else ["The isolation bound is the empirical-measure rate itself: this row checks the reference, not a model."]
                out.append(Check(f"C: W1 vs n, {label}, d={d} ({'isolation' if key == 'dou_isolation' else 'distillation'} exponent)", b.citation, b.formula, "n", e, fit, v, "figures/statistical_rate.png", cfg, "toy analogue: product mixtures instead of the paper's general setting", notes + [f"Mean W1 by n: {by_n}."], f"no slope (W1 {by_n})"))
        ax.axhline(pop.mean(), color="C0", ls="--", lw=1, label="CM trained on the population (n_train = 0)")
        ax.axhline(floor, color="grey", lw=1, label="estimator floor (target vs target)")
        ax.set(xlabel="training-set size n", ylabel="W1 to the target", title=f"d = {d}")
        ax.legend(fontsize=6)
    save_figure(fig, figures_dir, NAME)
    return out
