"""
The worst case of a bound over targets
======================================

A bound like Li & Yan's TV <~ d/T holds for every target with a bounded second moment, so a
hand-picked target only shows where the bound is loose. :mod:`cmtheory.worst_case` searches for the
target that makes a sampler worst: every evaluation is an exact law
(:func:`cmtheory.worst_case.exact_error`), here DDPM's TV at T = 25 in d = 16, maximised over
mixtures of two Gaussian-smoothed spheres (:class:`cmtheory.targets.RadialMixture`) with
:math:`E|X_0|^2/d \\le 1` and widths at least 0.5 (:class:`cmtheory.worst_case.RadialFamily`; a
singular target would be at TV 1 from every output). The search (:func:`cmtheory.worst_case.worst_case`)
starts Nelder-Mead from the best points of a random design and reports whether its restarts agree.
"""

import math

import matplotlib.pyplot as plt
import numpy as np
import torch

from cmtheory.laws import radial_cdf
from cmtheory.processes import linear_schedule
from cmtheory.targets import GaussianMixture
from cmtheory.worst_case import RadialFamily, exact_error, worst_case

d, T = 16, 25
schedule = linear_schedule(T)
family = RadialFamily(d, K=2, tau_min=0.5)


def tv(target):
    """DDPM's exact TV to the target, on an unextrapolated radius grid (the search's cheap evaluation)."""
    return exact_error("ddpm", target, schedule, start="normal", cells=256, richardson=False).value


found = worst_case(tv, family, restarts=2, evaluations=9, design=6, seed=0)
print(f"worst TV found {found.value:.4f} after {found.evaluations} evaluations; restarts' best {np.round(found.restart_values, 4)}, "
      f"spread {found.spread:.1%} ({'agree' if found.converged else 'disagree: search longer'})")
print("maximiser: weights", np.round(found.target.weights.numpy(), 3), "radii / sqrt(d)", np.round(found.target.radii.numpy() / math.sqrt(d), 3),
      "widths", np.round(found.target.widths.numpy(), 3), f"E|X|^2/d = {found.target.second_moment:.3f}")

# %%
# The maximiser against two members of the family by hand: the narrowest Gaussian it allows and
# the two-scale mixture of the ``high_dim`` experiment (exact TV with Richardson's extrapolation).
# A search of a couple dozen evaluations gives a lower bound on the worst case, and a hand-picked
# member may beat it: the ``worst_case`` experiment runs longer searches in every d and reports
# how far its restarts disagree.
candidates = {
    "maximiser found": found.target,
    "N(0, 0.25 I)": GaussianMixture([1.0], torch.zeros(1, d), [0.25]),
    "0.5 N(0, 0.5 I) + 0.5 N(0, I)": GaussianMixture([0.5, 0.5], torch.zeros(2, d), [0.5, 1.0]),
}
exact = {name: exact_error("ddpm", target, schedule, start="normal") for name, target in candidates.items()}
for name, est in exact.items():
    print(f"{name:32s} TV = {est.value:.4f} +- {est.se:.1e}")

fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
u = np.linspace(0.0, 2.0, 400)
for name, target in candidates.items():
    ax.plot(u, radial_cdf(target, 1.0, 0.0, u * math.sqrt(d)), label=name)
ax.set(xlabel="|X_0| / sqrt(d)", ylabel="CDF of the radius", title=f"targets in d = {d}")
ax.legend(fontsize=8)
bx.bar(range(len(exact)), [e.value for e in exact.values()], yerr=[1.96 * e.se for e in exact.values()], color=["C0", "C1", "C2"])
bx.set_xticks(range(len(exact)), ["found", "narrowest\nGaussian", "two-scale"])
bx.set(ylabel=f"exact TV of DDPM, T = {T}", title="the search against hand-picked targets")
plt.show()
