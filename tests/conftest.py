"""Shared fixtures: one instance of every target kind, built from a fixed seed."""

import os

import pytest
import torch

from cmtheory.targets import Empirical, GaussianMixture, ProductMixture, Sphere, Subspace

CHANNELS = [(1.0, 0.3), (0.8, 0.6), (0.3, 1.2)]


def make_targets():
    g = torch.Generator().manual_seed(1234)
    d = 3
    A = torch.randn(2, d, d, generator=g, dtype=torch.float64)
    basis = torch.linalg.qr(torch.randn(5, 2, generator=g, dtype=torch.float64))[0]
    return {
        "gmm_isotropic": GaussianMixture([0.3, 0.7], torch.randn(2, d, generator=g), [0.5, 1.2]),
        "gmm_diagonal": GaussianMixture([0.3, 0.7], torch.randn(2, d, generator=g), torch.rand(2, d, generator=g) + 0.2),
        "gmm_full": GaussianMixture([0.3, 0.7], torch.randn(2, d, generator=g), A @ A.transpose(1, 2) + 0.3 * torch.eye(d)),
        "product": ProductMixture(d, [0.4, 0.6], [-1.0, 1.5], [0.3, 0.5]),
        "subspace": Subspace(5, [0.5, 0.5], torch.randn(2, 2, generator=g), [0.3, 0.6], basis=basis),
        "sphere_k2": Sphere(3, 2, 1.5),
        "sphere_k3": Sphere(4, 3, 0.7, basis=torch.linalg.qr(torch.randn(4, 3, generator=g, dtype=torch.float64))[0]),
        "sphere_k1": Sphere(2, 1, 1.0),
        "empirical": Empirical(torch.randn(6, d, generator=g)),
    }


TARGETS = make_targets()


@pytest.fixture(params=sorted(TARGETS))
def target(request):
    return TARGETS[request.param]


if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest -n N: one torch thread per worker; N workers x the default thread count
    # oversubscribe the cores, and OpenMP spin-waiting then slows the suite several-fold
    torch.set_num_threads(1)
