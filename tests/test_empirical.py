"""Empirical: the smoothed law of a point set."""

import pytest
import torch

from cmtheory.targets import Empirical


def test_empirical_log_prob_is_average_of_gaussians():
    pts = torch.randn(7, 2, dtype=torch.float64)
    emp = Empirical(pts)
    x = torch.randn(5, 2, dtype=torch.float64)
    a, s = 0.7, 0.3
    dens = torch.distributions.Normal(a * pts[None], s).log_prob(x[:, None]).sum(-1).exp().mean(1)
    torch.testing.assert_close(emp.log_prob(x, a, s), dens.log())


def test_empirical_denoiser_tends_to_nearest_point_as_sigma_vanishes():
    pts = torch.tensor([[0.0, 0.0], [1.0, 1.0], [3.0, -1.0]], dtype=torch.float64)
    x = pts + 0.1
    torch.testing.assert_close(Empirical(pts).denoiser(x, 1.0, 1e-3), pts)


def test_empirical_samples_are_atoms():
    pts = torch.randn(4, 3, dtype=torch.float64)
    x = Empirical(pts).sample(100, torch.Generator().manual_seed(0))
    assert (x[:, None] - pts[None]).abs().sum(-1).min(1).values.max() == 0


def test_invalid_points():
    with pytest.raises(ValueError, match="points must have shape"):
        Empirical(torch.zeros(3))
    with pytest.raises(ValueError, match="points contains NaN"):
        Empirical(torch.tensor([[float("nan"), 0.0]]))
