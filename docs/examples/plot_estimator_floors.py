"""
Estimators with their noise floors
==================================

A sample-based distance is never zero: two independent samples of the same law are at a positive
empirical distance, which shrinks with n (for W1 in d dimensions, like :math:`n^{-1/d}`). Every
sample-based estimator in :mod:`cmtheory.metrics` returns an :class:`~cmtheory.metrics.Estimate`
with its standard error (over disjoint batches) and, given a second reference sample, its floor:
the same estimator between the two reference samples. A measured error within two standard errors
of the floor cannot be told apart from zero (``floor_dominated``); the rate fits exclude such
points and list them.
"""

import matplotlib.pyplot as plt
import torch

from cmtheory.metrics import w2_gaussians, wasserstein
from cmtheory.report import design_ticks
from cmtheory.targets import GaussianMixture

d = 2
target = GaussianMixture([1.0], [[0.0] * d], [1.0])
shift = torch.tensor([0.3] + [0.0] * (d - 1), dtype=torch.float64)
shifted = GaussianMixture([1.0], [shift.tolist()], [1.0])
exact = w2_gaussians(shift, torch.eye(d), torch.zeros(d), torch.eye(d)).value  # = |shift|
g = torch.Generator().manual_seed(0)
ns, values, ses, floors = [250, 1000, 4000, 8000], [], [], []
for n in ns:
    x, y, ref = shifted.sample(n, g), target.sample(n, g), target.sample(n, g)
    est = wasserstein(x, y, p=2, method="emd", batches=5, reference=ref)
    print(f"n = {n:5d}: W2 = {est.value:.4f} +- {est.se:.4f}, floor {est.floor:.4f}; at the floor: {est.floor_dominated()}")
    values.append(est.value), ses.append(est.se), floors.append(est.floor)

fig, ax = plt.subplots(figsize=(5, 3.8), layout="constrained")
ax.errorbar(ns, values, yerr=[1.96 * s for s in ses], fmt="o", capsize=3, label="W2(shifted, target), 95% CI")
ax.plot(ns, floors, "x--", color="0.4", label="floor: W2(target, target)")
ax.axhline(exact, color="k", ls=":", label=f"exact W2 = {exact:.2f}")
ax.set(xscale="log", yscale="log", xlabel="n (5 disjoint batches of n / 5)", ylabel="W2", title="an estimate is only as good as its floor")
design_ticks(ax, ns)
ax.legend(fontsize=8)
plt.show()
