"""Bessel functions against scipy.special (independent implementation).

Tolerance 1e-9 relative: Debye's expansion at order >= 80 truncates at ~0.3/80^5 = 1e-10.
"""

import numpy as np
import pytest
import scipy.special as sp
import torch

from cmtheory.special import bessel_ratio, log_ive, log_sphere_mgf_scaled, one_minus_bessel_ratio

KAPPA = np.logspace(-6, 9, 301)


@pytest.mark.parametrize("nu", [-0.5, 0.0, 0.5, 1.0, 2.5, 7.0, 31.0, 99.5])
def test_against_scipy(nu):
    ive_nu, ive_nu1 = sp.ive(nu, KAPPA), sp.ive(nu + 1, KAPPA)
    ok = (ive_nu > 1e-290) & (ive_nu1 > 1e-290)
    k = torch.tensor(KAPPA[ok], dtype=torch.float64)
    ref_log, ref_R = np.log(ive_nu[ok]), ive_nu1[ok] / ive_nu[ok]
    np.testing.assert_allclose(log_ive(nu, k).numpy(), ref_log, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(bessel_ratio(nu, k).numpy(), ref_R, rtol=1e-9)
    big = (1 - ref_R) > 1e-6  # where scipy's 1 - R itself still has 1e-10 relative accuracy
    np.testing.assert_allclose(one_minus_bessel_ratio(nu, k).numpy()[big], (1 - ref_R)[big], rtol=1e-8)


def test_one_minus_ratio_asymptote():
    """1 - R_nu(kappa) = (2 nu + 1) / (2 kappa) + O(kappa^-2) (DLMF 10.40.1)."""
    k = torch.tensor([1e8, 1e10, 1e12], dtype=torch.float64)
    np.testing.assert_allclose(one_minus_bessel_ratio(1.5, k).numpy(), (4 / (2 * k)).numpy(), rtol=1e-7)


def test_sphere_mgf_is_smooth_through_the_series_switch():
    nu = 1.5
    k = torch.tensor([1e-3 * (1 - 1e-9), 1e-3], dtype=torch.float64)
    v = log_sphere_mgf_scaled(nu, k)
    assert abs(float(v[1] - v[0])) < 1e-12
    assert float(log_sphere_mgf_scaled(nu, torch.zeros(1, dtype=torch.float64))) == 0.0


def test_gradients_are_finite_everywhere():
    k = torch.tensor([0.0, 1e-5, 0.5, 40.0, 1e4, 1e9], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(log_sphere_mgf_scaled(2.0, k).sum(), k)
    assert torch.isfinite(g).all()
    # d/dkappa [log mgf - kappa] = R - 1
    torch.testing.assert_close(g[1:], (bessel_ratio(2.0, k.detach()) - 1)[1:], rtol=1e-8, atol=1e-12)


def test_rejects_bad_order_and_argument():
    with pytest.raises(ValueError, match="nu must be"):
        bessel_ratio(-1.0, torch.ones(1, dtype=torch.float64))
    with pytest.raises(ValueError, match="kappa must be > 0"):
        log_ive(1.0, torch.zeros(1, dtype=torch.float64))
