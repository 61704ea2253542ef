"""
A rate fit, asserted
====================

:func:`cmtheory.testing.exact_tv_rate` computes DDPM's exact TV for several step counts T and fits
:math:`TV \\approx C T^a` with a CI on a; :func:`cmtheory.testing.assert_rate` is the assertion a
user's CI keeps (it fails with the fit, the CI and the points in its message). Li & Yan's bound
:math:`d\\log^3 T/T` has exponent -1 in T; :func:`cmtheory.rates.verdict` compares the two.
"""

import matplotlib.pyplot as plt
import numpy as np

from cmtheory.rates import verdict
from cmtheory.report import rate_axes
from cmtheory.targets import GaussianMixture
from cmtheory.testing import assert_rate, exact_tv_rate

gmm = GaussianMixture([0.4, 0.6], [[-1.0], [1.0]], [0.25, 0.16])
fit = exact_tv_rate("ddpm", gmm, Ts=[50, 100, 200, 400])
print(fit.summary("T"))
print("verdict against the bound's exponent -1:", verdict(fit, "T", -1.0))
assert_rate(fit, "T", -1.0, tol=0.05)

# %%
# The same fit drawn the way the experiments draw theirs: points with 95% error bars, the fitted
# slope, the bound's slope anchored at the first point, and the local slopes below.
T = np.array([p["T"] for p in fit.points])
tv = np.array([p["y"] for p in fit.points])
se = np.array([p["se"] for p in fit.points])
fig, ax = plt.subplots(figsize=(5, 4.5), layout="constrained")
rate_axes(ax, T, tv, se, fit, "T", -1.0, label="DDPM, exact law")
ax.set(ylabel="TV(output, target)", title="DDPM on a 1-D mixture")
ax.legend(fontsize=8)
plt.show()
