"""Distance estimators, each returning an Estimate (value, standard error, n, method, noise floor)."""

from cmtheory.metrics.kl import kl_gaussians, kl_grid, path_kl
from cmtheory.metrics.result import Estimate, replicate_estimate
from cmtheory.metrics.tv import product_divergences, tv_classifier, tv_gaussians, tv_grid, tv_histogram
from cmtheory.metrics.wasserstein import (
    coupling_distance, sinkhorn_divergence, sliced_wasserstein, w1_radial, w1_to_cdf, w2_gaussians, w2_product, w_grid, wasserstein,
)

__all__ = [
    "Estimate", "replicate_estimate", "kl_gaussians", "kl_grid", "path_kl", "product_divergences",
    "tv_classifier", "tv_gaussians", "tv_grid", "tv_histogram", "coupling_distance", "sinkhorn_divergence", "sliced_wasserstein", "w2_gaussians",
    "w2_product", "w_grid", "wasserstein", "w1_to_cdf", "w1_radial",
]
