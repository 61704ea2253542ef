"""
Check your own sampler
======================

A sampler written in user code, never touching cmtheory: DDPM whose noise carries one second-order
correction of our choosing, :math:`\\sqrt{\\beta_t/\\alpha_t}\\,(Z + \\tfrac{\\beta_t}{2} H_t Z)` with
:math:`H_t` the Hessian of :math:`\\log q_t` (through its product with Z). Its step is Gaussian
given the state, so we describe it by its transition (a mean and a noise operator) and
:func:`cmtheory.samplers.register` it. The registry then gives it what the papers' samplers get:
the sampler itself, its exact output law in 1-D (:func:`cmtheory.samplers.sampler_law_1d`) and,
its step being rotation-equivariant, on rotation-invariant targets in any d
(:func:`cmtheory.samplers.sampler_law_radial`), and :func:`cmtheory.testing.sampler_rate` fits its
exact TV against T and against d.
"""

import math

import matplotlib.pyplot as plt
import torch

from cmtheory.laws import GaussianTransition
from cmtheory.samplers import SAMPLERS, SamplerSpec, register, unregister
from cmtheory.targets import GaussianMixture
from cmtheory.testing import assert_rate, sampler_rate


def my_step(score, hvp, schedule, t):
    """Step t: mean (y + beta s(y)) / sqrt(alpha_t), noise c (z + (beta / 2) H z), c = sqrt(beta / alpha_t)."""
    beta = schedule.beta(t)
    a, s = schedule.channel(t)
    c = math.sqrt(beta / (1 - beta))

    def transition(y):
        mean = (y + beta * score(y, a, s)) / math.sqrt(1 - beta)
        return GaussianTransition(mean, lambda z: c * (z + 0.5 * beta * hvp(y, z, a, s)))

    return (transition,)


# kind, design order, score calls per step (register measures it), whether it needs the HVP
register("my_second_order", SamplerSpec(None, "stochastic", 2, 1, True, "DDPM with a second-order noise correction (gallery)", my_step))

# %%
# Exact TV against T on a 1-D mixture, and a rate assertion a CI can keep: second order. The
# standard errors are the grid laws' own (Richardson's estimate, a pessimistic one).
gmm = GaussianMixture([0.4, 0.6], [[-1.0], [1.0]], [0.25, 0.16])
fit_T = sampler_rate("my_second_order", gmm, Ts=[25, 50, 100])
print(fit_T.extra["measure"], "|", fit_T.summary("T"))
assert_rate(fit_T, "T", -2.0, tol=0.1)

# %%
# Exact TV against d up to 4096 on the scale mixture 0.5 N(0, 0.5 I_d) + 0.5 N(0, I_d) at T = 50,
# through the law of the radius (TV of rotation-invariant laws is TV of their radial laws).
mixture = lambda d: GaussianMixture([0.5, 0.5], torch.zeros(2, d), [0.5, 1.0])  # noqa: E731
fit_d = sampler_rate("my_second_order", mixture, ds=[1, 64, 4096], T=50, cells=256)
print(fit_d.summary("d"))

fig, (ax_T, ax_d) = plt.subplots(1, 2, figsize=(9, 4), layout="constrained")
for ax, fit, var in ((ax_T, fit_T, "T"), (ax_d, fit_d, "d")):
    x = [p[var] for p in fit.points]
    ax.loglog(x, [p["y"] for p in fit.points], "o-", label=f"my_second_order: slope {fit.exponents[var]:+.2f}")
    ax.set(xlabel=var, ylabel="exact TV(output, target)")
    ax.legend(fontsize=8)
ax_T.set_title("1-D mixture, against T")
ax_d.set_title("scale mixture, T = 50, against d")
plt.show()

# %%
# The registered name now works wherever a built-in's does (sweeps, benchmarks, the exact-law
# engines); a test suite would register it in a fixture and unregister it after.
print(sorted(SAMPLERS)[:4], "...", "my_second_order" in SAMPLERS)
unregister("my_second_order")
