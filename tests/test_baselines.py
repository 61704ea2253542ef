"""The benchmark baselines compute what cmtheory computes (so speed comparisons are like for like)."""

import numpy as np
import torch

from benchmarks.baselines import SchedulerStyleDDPM, numpy_isotropic_score
from cmtheory.processes import linear_schedule
from cmtheory.laws import ddpm_transition
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


def test_pot_sinkhorn_baseline_tracks_the_geomloss_estimate():
    """Both estimate W2 of the same clouds at reg = 0.5; they differ by design (POT keeps the linear
    term only), by less than 5% here where W2 ~ 2."""
    from benchmarks.baselines import pot_sinkhorn_w2
    from cmtheory.metrics import sinkhorn_divergence

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((300, 2)), rng.standard_normal((300, 2)) + [2.0, 0.0]
    assert abs(pot_sinkhorn_w2(x, y, 0.5) - sinkhorn_divergence(x, y, 0.5) ** 0.5) < 0.05 * 2.0


def test_draws_per_step_counts_each_samplers_gaussian_draws():
    from benchmarks.run_all import draws_per_step
    from cmtheory.samplers import SAMPLERS

    assert draws_per_step(SAMPLERS["ddpm"], GMM) == 1
    assert draws_per_step(SAMPLERS["ddim"], GMM) == 0
    assert draws_per_step(SAMPLERS["li_icml2024"], GMM) == 2


def test_roofline_adds_the_bytes_at_the_bandwidth():
    from benchmarks.bench_scores import roofline

    assert roofline(10, 4, 2, t_mm=1.0, bw=4 * (2 * 10 * 4 + 2 * 10 * 2)) == 2.0
