"""
Exact targets and their noisy scores
====================================

A target is a law :math:`X_0` with the Gaussian channel :math:`x = \\alpha X_0 + \\sigma Z`
in closed form: sampling, log-density, score :math:`\\nabla\\log q`, denoiser
:math:`E[X_0\\mid x]` and Hessian-vector products, batched over ``(n, d)``.
Here a 1-D two-component mixture: its score against autograd of its log-density, and its noisy
densities along the channel.
"""

import matplotlib.pyplot as plt
import torch

from cmtheory.targets import GaussianMixture

gmm = GaussianMixture([0.4, 0.6], [[-1.0], [1.0]], [0.25, 0.16])
x = torch.linspace(-4, 4, 401, dtype=torch.float64).reshape(-1, 1)

# %%
# Tweedie: the score is :math:`(\alpha\,E[X_0\mid x] - x)/\sigma^2`, and it is the gradient of
# the log-density; both identities hold to round-off.
alpha, sigma = 0.8, 0.6
xg = x.clone().requires_grad_(True)
autograd_score = torch.autograd.grad(gmm.log_prob(xg, alpha, sigma).sum(), xg)[0]
score = gmm.score(x, alpha, sigma)
tweedie = (alpha * gmm.denoiser(x, alpha, sigma) - x) / sigma**2
print(f"max |score - autograd| = {(score - autograd_score).abs().max():.1e}")
print(f"max |score - Tweedie|  = {(score - tweedie).abs().max():.1e}")

# %%
# The noisy densities :math:`q_t` between the target (:math:`\sigma = 0`) and nearly N(0, 1).
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5), layout="constrained")
for a in (1.0, 0.9, 0.6, 0.2):
    s = (1 - a**2) ** 0.5
    ax1.plot(x[:, 0], gmm.log_prob(x, a, s).exp(), label=f"alpha = {a:g}")
    if s > 0:
        ax2.plot(x[:, 0], gmm.score(x, a, s)[:, 0], label=f"alpha = {a:g}")
ax1.set(xlabel="x", ylabel="density", title="noisy laws q_t")
ax2.set(xlabel="x", ylabel="score", title="their scores")
ax1.legend(fontsize=8)
ax2.legend(fontsize=8)
plt.show()
