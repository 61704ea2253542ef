"""The benchmark baselines compute what cmtheory computes (so speed comparisons are like for like)."""

import numpy as np
import torch

from benchmarks.baselines import SchedulerStyleDDPM, numpy_isotropic_score
from cmtheory.processes import linear_schedule
from cmtheory.samplers.stochastic import ddpm_transition
from cmtheory.targets import GaussianMixture

GMM = GaussianMixture([0.3, 0.7], [[1.0, -1.0, 0.5], [-0.5, 0.2, 0.0]], [0.4, 0.9])


def test_numpy_score_matches_target_score():
    x = torch.randn(50, 3, dtype=torch.float64)
    ref = GMM.score(x, 0.7, 0.5).numpy()
    out = numpy_isotropic_score(x.numpy(), GMM.weights.numpy(), GMM.means.numpy(), GMM.covs.numpy(), 0.7, 0.5)
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)


def test_scheduler_step_mean_is_the_ddpm_mean():
    """The posterior mean built from the epsilon prediction equals (y + beta s)/sqrt(alpha)."""
    sched = linear_schedule(50)
    s = SchedulerStyleDDPM(sched.betas)
    s.alphas_cumprod = s.alphas_cumprod.double()
    y = torch.randn(20, 3, dtype=torch.float64)
    for t in (50, 10, 2):  # cmtheory step t is the scheduler's index t - 1
        a, sg = sched.channel(t)
        eps = -sg * GMM.score(y, a, sg)
        prev = s.step(eps, t - 1, y, generator=torch.Generator().manual_seed(0))
        noise = torch.randn(y.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        ref = ddpm_transition(GMM.score, sched, t, y).mean
        expected = ref + (1 - float(s.alphas_cumprod[t - 1] / s.alphas_cumprod[t - 2])) ** 0.5 * noise
        # 1e-5: the scheduler keeps its betas in float32, as diffusers does
        torch.testing.assert_close(prev, expected, rtol=1e-5, atol=1e-5)
