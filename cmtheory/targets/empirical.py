r"""Empirical measures :math:`\frac1N\sum_i \delta_{x_i}` and their smoothed laws.

Under the channel, :math:`q(x) = \frac1N\sum_i N(x; \alpha x_i, \sigma^2 I)`: an isotropic
Gaussian mixture with zero component variance, so the mixture kernels apply unchanged. The
kernels expand :math:`|x - \alpha x_i|^2 / \sigma^2` into matmuls, which cancels to
:math:`(|x|/\sigma)^2` relative precision: float32 inputs are evaluated in float64 (then cast
back), since float32 loses tenths of a nat in the log-density at sigma ~ 1e-3.
The law is singular at sigma = 0. Used by the statistical-rate experiments (Dou et al. 2024),
where training "from the empirical measure" has this closed-form smoothed score.
"""

from __future__ import annotations

import torch

from cmtheory.targets.gaussian_mixture import GaussianMixture

__all__ = ["Empirical"]


class Empirical(GaussianMixture):
    r"""Uniform law on a finite point set.

    Parameters
    ----------
    points : array of shape (N, d)
        The atoms :math:`x_i`.
    """

    singular = True
    float64_methods = ("hvp", "log_prob", "score", "denoiser")

    def __init__(self, points):
        pts = torch.as_tensor(points, dtype=torch.float64)
        if pts.ndim != 2 or pts.shape[0] == 0:
            raise ValueError(f"points must have shape (N, d) with N >= 1, got {tuple(pts.shape)}")
        if not torch.isfinite(pts).all():
            raise ValueError("points contains NaN or inf")
        N = pts.shape[0]
        self._setup(torch.full((N,), 1.0 / N, dtype=torch.float64), pts, torch.zeros(N, dtype=torch.float64), "isotropic")

