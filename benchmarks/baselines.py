"""What a user would otherwise write: baselines for the sampler benchmark.

* ``SchedulerStyleDDPM``: a scheduler object in the style of diffusers' DDPMScheduler: the
  model predicts epsilon, ``step`` looks up alphas_cumprod, forms the x0 prediction and the
  posterior mean coefficients every step (here from the exact score, epsilon = -sigma s).
* ``numpy_ddpm``: the same chain as cmtheory's ddpm, with numpy arrays and a numpy score.
* ``pot_sinkhorn_w2``: the debiased Sinkhorn estimate as cmtheory computed it before GeomLoss
  (POT's log-domain solver on its torch backend, marginal tolerance 1e-6).
"""

from __future__ import annotations

import numpy as np
import torch


class SchedulerStyleDDPM:
    """A diffusers-style scheduler (Ho et al. posterior mean, variance beta_t)."""

    def __init__(self, betas: torch.Tensor):
        self.betas = betas.float()
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = torch.cumprod(self.alphas, 0)
        self.timesteps = torch.arange(len(betas) - 1, -1, -1)

    def step(self, model_output, timestep, sample, generator=None):
        t = int(timestep)
        alpha_prod_t = self.alphas_cumprod[t]
        alpha_prod_t_prev = self.alphas_cumprod[t - 1] if t > 0 else torch.tensor(1.0)
        beta_prod_t = 1 - alpha_prod_t
        beta_prod_t_prev = 1 - alpha_prod_t_prev
        current_alpha_t = alpha_prod_t / alpha_prod_t_prev
        current_beta_t = 1 - current_alpha_t
        pred_original_sample = (sample - beta_prod_t**0.5 * model_output) / alpha_prod_t**0.5
        original_coeff = (alpha_prod_t_prev**0.5 * current_beta_t) / beta_prod_t
        current_coeff = current_alpha_t**0.5 * beta_prod_t_prev / beta_prod_t
        prev = original_coeff * pred_original_sample + current_coeff * sample
        if t > 0:
            noise = torch.randn(sample.shape, generator=generator, dtype=sample.dtype, device=sample.device)
            prev = prev + current_beta_t**0.5 * noise
        return prev


def scheduler_loop(target, betas, y, generator=None):
    """The loop a diffusers user writes around a scheduler and an epsilon model."""
    sched = SchedulerStyleDDPM(betas)
    for t in sched.timesteps:
        ab = float(sched.alphas_cumprod[t])
        eps = -((1 - ab) ** 0.5) * target.score(y, ab**0.5, (1 - ab) ** 0.5)
        y = sched.step(eps, t, y, generator)
    return y


def numpy_isotropic_score(x, w, mu, c, a, s):
    """Isotropic GMM score in numpy (the same matmul formulation a careful user would write)."""
    v = a * a * c + s * s
    logits = np.log(w) - 0.5 * ((x * x).sum(1, keepdims=True) - 2 * a * x @ mu.T + a * a * (mu * mu).sum(1)) / v - 0.5 * x.shape[1] * np.log(v)
    logits -= logits.max(1, keepdims=True)
    r = np.exp(logits)
    r /= r.sum(1, keepdims=True)
    rv = r / v
    return a * rv @ mu - x * rv.sum(1, keepdims=True)


def numpy_ddpm(w, mu, c, betas, y, rng):
    """DDPM with numpy arrays: Y <- (Y + beta s(Y)) / sqrt(alpha) + sqrt(beta) Z."""
    abar = np.cumprod(1 - betas)
    for t in range(len(betas) - 1, -1, -1):
        b = betas[t]
        s = numpy_isotropic_score(y, w, mu, c, np.sqrt(abar[t]), np.sqrt(1 - abar[t]))
        y = (y + b * s) / np.sqrt(1 - b) + np.sqrt(b) * rng.standard_normal(y.shape, dtype=y.dtype)
    return y


def pot_sinkhorn_w2(x: np.ndarray, y: np.ndarray, reg: float) -> float:
    """sqrt of POT's debiased Sinkhorn divergence (linear term <P, M>, squared Euclidean cost)."""
    import ot

    s = ot.bregman.empirical_sinkhorn_divergence(torch.from_numpy(x), torch.from_numpy(y), reg, stopThr=1e-6,
                                                 numIterMax=20_000, method="sinkhorn_log", warn=False)
    return float(s) ** 0.5
