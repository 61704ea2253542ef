r"""Reference laws of the targets: exact cell masses of a target's noisy law on a grid."""

from __future__ import annotations

import numpy as np
import scipy.special

from cmtheory.laws.grid import GridLaw, _law_from_cdf
from cmtheory.targets import GaussianMixture

__all__ = ["check_1d_mixture", "gmm_1d_cdf", "gmm_1d_law"]


def check_1d_mixture(target) -> None:
    if not isinstance(target, GaussianMixture) or target.d != 1:
        raise ValueError(f"target must be a 1-D GaussianMixture, got {type(target).__name__} with d={getattr(target, 'd', None)}")


def gmm_1d_cdf(target: GaussianMixture, alpha: float, sigma: float, x: np.ndarray) -> np.ndarray:
    r"""CDF of the 1-D mixture's noisy law :math:`\sum_k w_k N(\alpha\mu_k, \alpha^2 c_k + \sigma^2)` at ``x``."""
    check_1d_mixture(target)
    w = target.weights.numpy()
    mu = target.means[:, 0].numpy()
    var = target.component_covariances()[:, 0, 0].numpy()
    sd = np.sqrt(alpha**2 * var + sigma**2)
    return (w * scipy.special.ndtr((np.asarray(x)[..., None] - alpha * mu) / sd)).sum(-1)


def gmm_1d_law(target: GaussianMixture, alpha: float, sigma: float, edges: np.ndarray) -> GridLaw:
    r"""Exact cell masses of the 1-D mixture's noisy law :math:`\sum_k w_k N(\alpha\mu_k, \alpha^2 c_k + \sigma^2)`."""
    return _law_from_cdf(edges, gmm_1d_cdf(target, alpha, sigma, edges))
