"""Tractable targets with exact noisy scores, denoisers, log-densities and Hessian-vector products."""

from cmtheory.targets.base import Target
from cmtheory.targets.empirical import Empirical
from cmtheory.targets.gaussian_mixture import GaussianMixture, ring_mixture
from cmtheory.targets.manifolds import Embedded, Sphere, Subspace
from cmtheory.targets.product import ProductMixture
from cmtheory.targets.radial_mixture import RadialMixture

__all__ = ["Target", "GaussianMixture", "ProductMixture", "Embedded", "Subspace", "Sphere", "RadialMixture", "Empirical", "ring_mixture"]
