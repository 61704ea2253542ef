r"""Exact output laws on Gaussian targets.

Every Gaussian-transition sampler is affine with constant noise on a Gaussian target, so
the output law is Gaussian, propagated exactly by :func:`gaussian_law`.
"""

from __future__ import annotations

from typing import Iterable

import torch

from cmtheory.laws.grid import Transition

__all__ = ["gaussian_law"]


def gaussian_law(mean: torch.Tensor, cov: torch.Tensor, transitions: Iterable[Transition]) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Exact output law of a Gaussian-transition sampler on a Gaussian target.

    Each transition is affine, :math:`Y' = A Y + b + M Z`, with M independent of Y; A and M
    are read off by applying the transition to the basis vectors, then
    :math:`m' = A m + b`, :math:`P' = A P A^T + M M^T`.
    """
    d = mean.numel()
    eye = torch.eye(d, dtype=torch.float64)
    m, P = mean.double().reshape(1, d), cov.double()
    for tr in transitions:
        base = tr(m)
        A_T = tr(m + eye).mean - base.mean  # rows: A e_i
        M_T = tr(m.expand(d, d)).noise(eye)  # rows: M e_i
        m = base.mean
        P = A_T.T @ P @ A_T + M_T.T @ M_T
        P = 0.5 * (P + P.T)
    return m[0], P
