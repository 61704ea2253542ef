"""Score sources: controlled L2 error of perturbed scores, Tweedie denoiser, counting."""

import math

import pytest
import torch

from cmtheory.samplers.scores import CountingScore, controlled_perturbation, denoiser_from_score, perturbed_score, realised_errors
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


BIMODAL = GaussianMixture([0.4, 0.6], [[-1.0], [1.0]], [0.25, 0.16])


@pytest.mark.parametrize("eps,eps_J", [(0.05, 0.0), (0.05, 0.05), (0.02, 0.64), (0.1, 3.0)])
@pytest.mark.parametrize("channel", [(1.0, 0.0), (0.8, 0.6), (0.1, 0.995)])
def test_controlled_perturbation_realises_its_nominal_errors(eps, eps_J, channel):
    """Under the channel's own law (Monte Carlo, n = 100000, Jacobian by autograd): the L2 and
    Jacobian errors equal the nominal eps and eps_J within 4 standard errors (the closed-form
    moments make them exact; the tolerance is the Monte Carlo's)."""
    pert = controlled_perturbation(BIMODAL, eps, eps_J, phase=0.3)
    r = realised_errors(pert, BIMODAL, *channel, n=100_000, generator=torch.Generator().manual_seed(5))
    for name, nominal in (("eps", eps), ("eps_J", eps_J)):
        assert abs(r[name].value - nominal) <= 4 * r[name].se + 1e-12


def test_controlled_perturbation_hvp_is_the_derivative_of_its_score():
    """The perturbed HVP against autograd of the perturbed score (float64 round-off)."""
    pert = controlled_perturbation(BIMODAL, 0.05, 0.4, phase=1.1)
    x = torch.linspace(-3, 3, 101, dtype=torch.float64)[:, None].requires_grad_(True)
    grad = torch.autograd.grad(pert.score(x, 0.7, 0.5).sum(), x)[0]
    v = torch.full_like(x, 2.0)
    torch.testing.assert_close(pert.hvp(x.detach(), v, 0.7, 0.5), 2.0 * grad, rtol=1e-10, atol=1e-12)


def test_controlled_perturbation_validation():
    with pytest.raises(ValueError, match="1-D GaussianMixture"):
        controlled_perturbation(GaussianMixture([1.0], [[0.0, 0.0]], [1.0]), 0.1, 0.1)
    with pytest.raises(ValueError, match="eps_J > 0 needs eps > 0"):
        controlled_perturbation(BIMODAL, 0.0, 0.1)
    with pytest.raises(ValueError, match=">= 0"):
        controlled_perturbation(BIMODAL, -0.1, 0.1)
    with pytest.raises(ValueError, match="eps_J must be a finite number"):
        controlled_perturbation(BIMODAL, 0.1, float("nan"))
