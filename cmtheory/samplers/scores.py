r"""Where a sampler's score comes from.

A score function is any callable ``score(x, alpha, sigma) -> (n, d)``: a target's exact
``target.score``, a network wrapped to that signature, or a target plus a controlled
perturbation (so the score-error term of the bounds can be swept).
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from cmtheory._checks import check_positive_int

ScoreFn = Callable[[torch.Tensor, object, object], torch.Tensor]

__all__ = ["ScoreFn", "perturbed_score", "denoiser_from_score", "CountingScore"]


def perturbed_score(
    score: ScoreFn,
    eps: float,
    d: int,
    generator: torch.Generator | None = None,
    kind: str = "fourier",
    features: int = 64,
    length_scale: float = 1.0,
) -> ScoreFn:
    r"""A score with a controlled L2 error :math:`\hat s = s + e`.

    Parameters
    ----------
    score : callable
        The exact score ``score(x, alpha, sigma)``.
    eps : float
        The L2 error :math:`(E|e(x)|^2)^{1/2}`, >= 0.
    d : int
        Dimension.
    generator : torch.Generator, optional
        Draws the perturbation field once.
    kind : {"fourier", "bias"}
        ``"bias"``: :math:`e = \epsilon u` with a fixed unit vector u, so the L2 error is
        exactly eps under any law of x. ``"fourier"``: a smooth random field
        :math:`e(x) = \epsilon\sqrt{2/m}\sum_{j=1}^m u_j \cos(\omega_j\cdot x + \phi_j)`,
        :math:`u_j` unit vectors, :math:`\omega_j \sim N(0, I/\ell^2)`, :math:`\phi_j \sim U[0, 2\pi)`,
        whose mean-square size is :math:`\epsilon^2` on average over the field (for any x).
    features, length_scale
        m and :math:`\ell` of the Fourier field.
    """
    if not (eps >= 0 and math.isfinite(eps)):
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
    check_positive_int(d, "d")
    if kind == "bias":
        u = torch.randn(d, generator=generator, dtype=torch.float64)
        u = eps * u / u.norm()

        def biased(x, alpha, sigma):
            return score(x, alpha, sigma) + u.to(x)

        return biased
    if kind != "fourier":
        raise ValueError(f"kind must be 'fourier' or 'bias', got {kind!r}")
    m = check_positive_int(features, "features")
    U = torch.randn(m, d, generator=generator, dtype=torch.float64)
    U = U / U.norm(dim=1, keepdim=True) * eps * math.sqrt(2 / m)
    W = torch.randn(d, m, generator=generator, dtype=torch.float64) / length_scale
    phi = 2 * math.pi * torch.rand(m, generator=generator, dtype=torch.float64)

    def fourier(x, alpha, sigma):
        return score(x, alpha, sigma) + torch.cos(x @ W.to(x) + phi.to(x)) @ U.to(x)

    return fourier


def denoiser_from_score(score: ScoreFn):
    r"""Tweedie's denoiser :math:`D(x) = (x + \sigma^2 s(x)) / \alpha` of a score function."""

    def denoiser(x, alpha, sigma):
        return (x + sigma**2 * score(x, alpha, sigma)) / alpha

    return denoiser


class CountingScore:
    """Wraps a score (or denoiser) and counts its calls and evaluated rows.

    Attributes
    ----------
    calls : int
        Number of calls.
    rows : int
        Total number of points evaluated.
    """

    def __init__(self, fn):
        self.fn, self.calls, self.rows = fn, 0, 0

    def __call__(self, x, alpha, sigma):
        self.calls += 1
        self.rows += x.shape[0]
        return self.fn(x, alpha, sigma)
