"""ProductMixture: equals the d-dimensional diagonal mixture it factorises, moments."""

import itertools

import pytest
import torch

from cmtheory.targets import GaussianMixture, ProductMixture


def test_product_equals_explicit_mixture_over_all_component_tuples():
    w, m, v = [0.3, 0.7], [-1.0, 2.0], [0.2, 0.5]
    d = 3
    prod = ProductMixture(d, w, m, v)
    tuples = list(itertools.product(range(2), repeat=d))
    W = [float(torch.tensor([w[i] for i in t], dtype=torch.float64).prod()) for t in tuples]
    M = [[m[i] for i in t] for t in tuples]
    V = [[v[i] for i in t] for t in tuples]
    explicit = GaussianMixture(W, M, V)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(30, d, generator=g, dtype=torch.float64)
    u = torch.randn(30, d, generator=g, dtype=torch.float64)
    for meth in ("log_prob", "score", "denoiser"):
        torch.testing.assert_close(getattr(prod, meth)(x, 0.7, 0.4), getattr(explicit, meth)(x, 0.7, 0.4))
    # The explicit mixture's HVP is a difference of responsibility-weighted second moments
    # over 8 components, which cancels to ~1e-7 at points between modes; 1e-6 states that.
    torch.testing.assert_close(prod.hvp(x, u, 0.7, 0.4), explicit.hvp(x, u, 0.7, 0.4), rtol=1e-6, atol=1e-6)


def test_sample_moments():
    prod = ProductMixture(4, [0.5, 0.5], [-1.0, 1.0], [0.1, 0.1])
    x = prod.sample(100_000, torch.Generator().manual_seed(0))
    var = float(prod.covariance()[0, 0])
    assert abs(var - 1.1) < 1e-12
    assert (x.mean(0).abs() < 5 * (var / 1e5) ** 0.5).all()
    assert ((x.var(0) - var).abs() < 5 * (2 * var**2 / 1e5) ** 0.5 * 1.5).all()


def test_invalid_inputs():
    with pytest.raises(ValueError, match="d must be an int"):
        ProductMixture(0, [1.0], [0.0], [1.0])
    with pytest.raises(ValueError, match="means must be a 1-D"):
        ProductMixture(2, [1.0], [[0.0]], [1.0])
