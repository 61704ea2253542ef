"""Score sources: controlled L2 error of perturbed scores, Tweedie denoiser, counting."""

import math

import pytest
import torch

from cmtheory.samplers.scores import CountingScore, denoiser_from_score, perturbed_score
from cmtheory.targets import GaussianMixture

GMM = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], [0.2, 0.2])


def test_bias_perturbation_has_exact_l2_error():
    s = perturbed_score(GMM.score, 0.3, 2, torch.Generator().manual_seed(0), kind="bias")
    x = torch.randn(100, 2, dtype=torch.float64)
    err = (s(x, 0.8, 0.5) - GMM.score(x, 0.8, 0.5)).norm(dim=1)
    torch.testing.assert_close(err, torch.full_like(err, 0.3))


def test_fourier_perturbation_has_l2_error_eps_on_average_over_fields():
    """Mean over 200 random fields of E|e(x)|^2 equals eps^2 within 5 standard errors."""
    x = GMM.sample_noisy(2000, 0.8, 0.5, torch.Generator().manual_seed(1))
    msq = []
    for seed in range(200):
        s = perturbed_score(GMM.score, 0.5, 2, torch.Generator().manual_seed(seed))
        msq.append(float(((s(x, 0.8, 0.5) - GMM.score(x, 0.8, 0.5)) ** 2).sum(1).mean()))
    msq = torch.tensor(msq)
    assert abs(float(msq.mean()) - 0.25) < 5 * float(msq.std()) / math.sqrt(200)


def test_denoiser_from_score_is_the_target_denoiser():
    x = torch.randn(10, 2, dtype=torch.float64)
    torch.testing.assert_close(denoiser_from_score(GMM.score)(x, 0.7, 0.6), GMM.denoiser(x, 0.7, 0.6))


def test_counting_and_validation():
    c = CountingScore(GMM.score)
    c(torch.zeros(4, 2, dtype=torch.float64), 1.0, 0.5)
    assert (c.calls, c.rows) == (1, 4)
    with pytest.raises(ValueError, match="eps must be"):
        perturbed_score(GMM.score, -1.0, 2)
    with pytest.raises(ValueError, match="kind must be"):
        perturbed_score(GMM.score, 1.0, 2, kind="x")
