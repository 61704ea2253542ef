"""
Ideal consistency training
==========================

Li, Huang & Wei's consistency training learns a sequence of maps :math:`f_1 = \\mathrm{id}, f_2,
\\dots, f_T`; with zero learning error each is a conditional expectation
(:doc:`../papers`, section A). :func:`cmtheory.consistency.ideal_ct_error` computes the one-step
sampler's :math:`W_2` to :math:`X_1` in closed form for a Gaussian target, and on a grid for a
1-D mixture. The theorem bounds it by :math:`d^{5/2}\\log^5 T/T`: exponent -1 in T, up to logs.
"""

import matplotlib.pyplot as plt
import numpy as np

from cmtheory.consistency import ideal_ct_error
from cmtheory.processes import linear_schedule
from cmtheory.rates import fit_power_law
from cmtheory.report import rate_axes
from cmtheory.targets import GaussianMixture

gaussian = GaussianMixture([1.0], [[0.5]], [0.3])
Ts = np.array([50, 100, 200, 400, 800])
w2 = np.array([ideal_ct_error(gaussian, linear_schedule(int(T), 0.1, 40.0)).value for T in Ts])
fit = fit_power_law(w2, T=Ts)
print(fit.summary("T"))

fig, ax = plt.subplots(figsize=(5, 4.5), layout="constrained")
rate_axes(ax, Ts, w2, None, fit, "T", -1.0, label="Gaussian target, closed form")
ax.set(ylabel="W2(f_T(X_T), X_1)", title="ideal CT: one-step error against T")
ax.legend(fontsize=8)
plt.show()
