"""Networks: boundary conditions of the skip parameterisations, seeded initialisation, input errors."""

import math

import pytest
import torch

from cmtheory.consistency.networks import EDMConsistency, TimeMLP, TrigFlowConsistency, init_parameters_, time_embedding


def _F(d=3, seed=0, **kw):
    return TimeMLP(d, width=16, depth=2, generator=torch.Generator().manual_seed(seed), **kw).double()


def test_edm_boundary_is_identity_exactly():
    f = EDMConsistency(_F(), sigma_min=0.002, sigma_data=0.7)
    y = torch.randn(7, 3, dtype=torch.float64)
    assert torch.equal(f(y, 0.002), y)
    assert not torch.allclose(f(y, 1.0), y)


def test_trigflow_boundary_is_identity_and_uses_the_formula():
    F = _F()
    f = TrigFlowConsistency(F, sigma_data=0.5)
    x = torch.randn(5, 3, dtype=torch.float64)
    torch.testing.assert_close(f(x, 0.0), x, rtol=0, atol=0)
    t = torch.full((5,), 0.9, dtype=torch.float64)
    torch.testing.assert_close(f(x, t), math.cos(0.9) * x - math.sin(0.9) * 0.5 * F(x / 0.5, t))


def test_initialisation_follows_the_generator():
    a, b, c = _F(seed=1), _F(seed=1), _F(seed=2)
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb) and not torch.equal(pa, pc)
    layer = torch.nn.Linear(400, 3)
    init_parameters_(layer, torch.Generator().manual_seed(0))
    assert layer.weight.abs().max() <= 1 / 20


def test_time_embedding_features():
    c = torch.tensor([0.0, 0.5])
    e = time_embedding(c, 3)
    assert e.shape == (2, 7)
    torch.testing.assert_close(e[1], torch.tensor([0.5, math.sin(0.5), math.sin(1.0), math.sin(2.0), math.cos(0.5), math.cos(1.0), math.cos(2.0)]))


def test_bad_inputs_name_the_argument():
    f = EDMConsistency(_F(), sigma_min=0.01, sigma_data=1.0)
    y = torch.randn(4, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="sigma must be >= sigma_min"):
        f(y, 0.001)
    with pytest.raises(ValueError, match=r"sigma must be a scalar or a tensor of shape \(4,\)"):
        f(y, torch.ones(3))
    with pytest.raises(ValueError, match="t must lie in"):
        TrigFlowConsistency(_F())(y, 2.0)
    with pytest.raises(ValueError, match="width"):
        TimeMLP(3, width=0)
    with pytest.raises(ValueError, match="sigma_data"):
        EDMConsistency(_F(), 0.01, -1.0)
