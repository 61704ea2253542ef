"""Helpers shared by the neural consistency experiments (B, C, D): tidy rows for training
logs and sample distances, and the comparison of two methods across replicate seeds."""

from __future__ import annotations

import math

import numpy as np
import scipy.stats
import torch

from cmtheory.consistency import TrainingLog
from cmtheory.metrics import wasserstein

EVAL_N = 5000  # evaluation samples: 5 exact-OT batches of 1000


def log_rows(log: TrainingLog, every: int = 50) -> list[dict]:
    """The loss curve (block means), the divergence flag and the training time as rows."""
    it, v = log.curve(every)
    rows = [{"metric": "loss", "iteration": int(i), "value": float(x)} for i, x in zip(it, v)]
    rows.append({"metric": "diverged", "value": float(log.diverged)})
    rows.append({"metric": "train_s", "value": log.wall_s, "method": "wall clock"})
    return rows


def w_row(metric: str, x: torch.Tensor, y: torch.Tensor, reference: torch.Tensor, p: int = 2, batches: int = 5) -> dict:
    """W_p between samples by exact OT in batches, with the target-vs-target floor; a
    non-finite sample (a diverged model) gives value inf."""
    if not torch.isfinite(x).all():
        return {"metric": metric, "value": math.inf, "se": math.nan, "method": "emd (non-finite samples)"}
    return {"metric": metric, **wasserstein(x.double(), y, p=p, batches=batches, reference=reference).as_row()}


def mse_row(metric: str, x: torch.Tensor, y: torch.Tensor) -> dict:
    r""":math:`E\|x - y\|^2` over paired samples, with its standard error."""
    sq = ((x.double() - y.double()) ** 2).sum(1)
    return {"metric": metric, "value": float(sq.mean()), "se": float(sq.std() / math.sqrt(sq.numel())), "method": "paired mean", "n": sq.numel()}


def difference_ci(a, b, level: float = 0.95) -> tuple[float, float, float]:
    """Mean(a) - mean(b) over replicate seeds with a Welch t interval."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    diff = a.mean() - b.mean()
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    if se == 0:
        return diff, diff, diff
    dof = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    h = scipy.stats.t.ppf(0.5 + level / 2, dof) * se
    return diff, diff - h, diff + h


def comparison_verdict(lo: float, hi: float, paper_sign: int) -> str:
    """Verdict for 'the paper says A - B has sign paper_sign', from the CI [lo, hi] of A - B."""
    if lo > 0 or hi < 0:
        return "as in the paper" if (lo > 0) == (paper_sign > 0) else "opposite of the paper"
    return "no significant difference"


def failure_rate(failed) -> str:
    """k/n failed with the Wilson 95% interval of the rate (scipy's binomtest), e.g. '1/3 (6%-79%)'."""
    failed = np.asarray(failed, bool)
    k, n = int(failed.sum()), failed.size
    ci = scipy.stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
    return f"{k}/{n} ({100 * ci.low:.0f}%-{100 * ci.high:.0f}%)"


def paired_difference_ci(a, b, level: float = 0.95) -> tuple[float, float, float]:
    """Mean of a - b over paired runs with a t interval (NaN interval for a single pair)."""
    diff = np.asarray(a, float) - np.asarray(b, float)
    if diff.size < 2:
        return float(diff.mean()), math.nan, math.nan
    h = scipy.stats.t.ppf(0.5 + level / 2, diff.size - 1) * diff.std(ddof=1) / math.sqrt(diff.size)
    return float(diff.mean()), float(diff.mean() - h), float(diff.mean() + h)
