r"""Modified Bessel functions of the first kind in torch, stable for any argument.

The noisy uniform law on a sphere has density and score through
:math:`I_\nu(\kappa)` and the ratio :math:`R_\nu(\kappa) = I_{\nu+1}(\kappa)/I_\nu(\kappa)`.
torch has no Bessel function of general order, so these are computed here, on any device,
differentiably (so autograd can check the closed-form score), without overflow:

* large :math:`\kappa` (:math:`\kappa \ge \kappa_H = \max(50, 2\nu^2)`): Hankel's
  expansion :math:`I_\nu(\kappa) e^{-\kappa}\sqrt{2\pi\kappa} = \sum_m (-1)^m a_m(\nu)\kappa^{-m}`,
  :math:`a_m(\nu) = \prod_{j=1}^m (4\nu^2 - (2j-1)^2) / (m!\,8^m)` (DLMF 10.40.1);
* otherwise: Debye's uniform expansion (DLMF 10.41.3) at a large order
  :math:`\mu = \nu + M \ge 80`, then the stable downward recurrence
  :math:`R_{j} = \kappa / (2(j+1) + \kappa R_{j+1})` (DLMF 10.29.1), which shrinks relative
  errors at every step, and :math:`\log I_\nu = \log I_\mu - \sum_{j=\nu}^{\mu-1}\log R_j`;
* tiny :math:`\kappa < 10^{-3}`: the power series.

Accuracy (checked against scipy.special in the tests): relative 1e-9 or better.
"""

from __future__ import annotations

import math

import torch

__all__ = ["log_ive", "bessel_ratio", "one_minus_bessel_ratio", "bessel_ratio_pair", "log_sphere_mgf_scaled"]

_MU_MIN = 80.0  # Debye order: truncation error ~ 0.3 / mu^5
_M_MIN = 8  # at least this many recurrence steps (fixes relative accuracy at small kappa)
_KAPPA_SMALL = 1e-3
_HANKEL_TERMS = 24

# Debye polynomials u_k(p), DLMF 10.41.10, coefficients of p^j.
_DEBYE_U = (
    {0: 1.0},
    {1: 3 / 24, 3: -5 / 24},
    {2: 81 / 1152, 4: -462 / 1152, 6: 385 / 1152},
    {3: 30375 / 414720, 5: -369603 / 414720, 7: 765765 / 414720, 9: -425425 / 414720},
    {
        4: 4465125 / 39813120,
        6: -94121676 / 39813120,
        8: 349922430 / 39813120,
        10: -446185740 / 39813120,
        12: 185910725 / 39813120,
    },
)


def _kappa_hankel(nu: float) -> float:
    return max(50.0, 2.0 * nu * nu)


def _recurrence_order(nu: float) -> tuple[float, int]:
    M = max(_M_MIN, math.ceil(_MU_MIN - nu))
    return nu + M, M


def _log_ive_debye(mu: float, kappa: torch.Tensor) -> torch.Tensor:
    r""":math:`\log(I_\mu(\kappa)e^{-\kappa})` by Debye's expansion (kappa > 0, mu large)."""
    z = kappa / mu
    sq = torch.sqrt(1 + z * z)
    p = 1 / sq
    series = torch.zeros_like(kappa)
    for k, coeffs in enumerate(_DEBYE_U):
        uk = sum(c * p**j for j, c in coeffs.items())
        series = series + uk / mu**k
    eta_minus_z = 1 / (sq + z) + torch.log(z / (1 + sq))
    return mu * eta_minus_z - 0.5 * math.log(2 * math.pi * mu) - 0.5 * torch.log(sq) + torch.log(series)


def _hankel_coefficients(nu: float) -> list[float]:
    """(-1)^m a_m(nu), m = 0.._HANKEL_TERMS-1."""
    coeffs = [1.0]
    for m in range(1, _HANKEL_TERMS):
        coeffs.append(-coeffs[-1] * (4 * nu * nu - (2 * m - 1) ** 2) / (m * 8))
    return coeffs


def _hankel_series(nu: float, kappa: torch.Tensor, coeffs: list[float] | None = None) -> torch.Tensor:
    r""":math:`S_\nu(\kappa) = \sum_m (-1)^m a_m(\nu) \kappa^{-m}` (Horner in 1/kappa), or the
    series with the given coefficients."""
    coeffs = _hankel_coefficients(nu) if coeffs is None else coeffs
    inv = 1 / kappa
    s = torch.full_like(kappa, coeffs[-1])
    for c in reversed(coeffs[:-1]):
        s = s * inv + c
    return s


def _downward(nu: float, kappa: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """R_nu and log ive_nu from Debye at order mu and the downward recurrence (kappa > 0)."""
    mu, M = _recurrence_order(nu)
    log_ive_mu = _log_ive_debye(mu, kappa)
    R = torch.exp(_log_ive_debye(mu + 1, kappa) - log_ive_mu)
    sum_log_R = torch.zeros_like(kappa)
    product = torch.ones_like(kappa)
    # R >= kappa / (2 order + 2 + kappa) > 5e-9 for kappa >= 1e-3 (smaller kappa take the series) and
    # orders up to 1e5, so 16 of them multiply to > 1e-133, a normal float64, and 4 to > 6e-34, a
    # normal float32: one logarithm per that many steps (every step in a narrower dtype)
    every = {torch.float64: 16, torch.float32: 4}.get(kappa.dtype, 1)
    for j in range(M):
        order = mu - 1 - j
        R = kappa / (2 * (order + 1) + kappa * R)
        product = product * R
        if j % every == every - 1 or j == M - 1:
            sum_log_R = sum_log_R + torch.log(product)
            product = torch.ones_like(kappa)
    return R, log_ive_mu - sum_log_R


def _split(kappa: torch.Tensor, nu: float):
    """Masks and clamped copies of kappa for the three regimes (clamping keeps the
    gradients of the unused branches finite: they are multiplied by zero, never by NaN)."""
    kh = _kappa_hankel(nu)
    large = kappa >= kh
    small = kappa < _KAPPA_SMALL
    k_large = torch.where(large, kappa, torch.full_like(kappa, kh))
    k_mid = torch.where(large | small, torch.full_like(kappa, 1.0), kappa)
    k_small = torch.where(small, kappa, torch.zeros_like(kappa))
    return large, small, k_large, k_mid, k_small


def _check_nu(nu: float) -> float:
    nu = float(nu)
    if not math.isfinite(nu) or nu < -0.5:
        raise ValueError(f"nu must be a finite order >= -1/2, got {nu}")
    return nu


def log_ive(nu: float, kappa: torch.Tensor) -> torch.Tensor:
    r"""Exponentially scaled log-Bessel function :math:`\log(I_\nu(\kappa) e^{-\kappa})`, kappa > 0."""
    nu = _check_nu(nu)
    if (kappa <= 0).any():
        raise ValueError("kappa must be > 0 in log_ive")
    kh = _kappa_hankel(nu)
    large = kappa >= kh
    k_large = torch.where(large, kappa, torch.full_like(kappa, kh))
    k_mid = torch.where(large, torch.ones_like(kappa), kappa)
    hankel = -0.5 * torch.log(2 * math.pi * k_large) + torch.log(_hankel_series(nu, k_large))
    return torch.where(large, hankel, _downward(nu, k_mid)[1])


def bessel_ratio_pair(nu: float, kappa: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r""":math:`R_\nu(\kappa) = I_{\nu+1}(\kappa)/I_\nu(\kappa)` and :math:`1 - R_\nu(\kappa)` for
    kappa >= 0, from one evaluation (a caller that needs both, like the sphere's score and
    Hessian, pays one downward recurrence instead of two).

    Three regimes: :math:`\kappa \ge \kappa_H`, the Hankel series,
    :math:`R = S_{\nu+1}/S_\nu` and, without cancellation,
    :math:`1 - R = \sum_m (-1)^m (a_m(\nu) - a_m(\nu+1))\kappa^{-m} / S_\nu(\kappa)`;
    small kappa, the series :math:`R = \frac{\kappa}{2(\nu+1)}(1 - \frac{\kappa^2}{4(\nu+1)(\nu+2)})`;
    between, Debye's expansion at a high order and the downward recurrence.
    """
    nu = _check_nu(nu)
    if (kappa < 0).any():
        raise ValueError("kappa must be >= 0")
    large, small, k_large, k_mid, k_small = _split(kappa, nu)
    S_nu = _hankel_series(nu, k_large)
    diff = [c - c1 for c, c1 in zip(_hankel_coefficients(nu), _hankel_coefficients(nu + 1))]
    R_mid, R_small = _downward(nu, k_mid)[0], _ratio_series(nu, k_small)
    R = torch.where(large, _hankel_series(nu + 1, k_large) / S_nu, torch.where(small, R_small, R_mid))
    C = torch.where(large, _hankel_series(nu, k_large, diff) / S_nu, torch.where(small, 1 - R_small, 1 - R_mid))
    return R, C


def one_minus_bessel_ratio(nu: float, kappa: torch.Tensor) -> torch.Tensor:
    r""":math:`1 - I_{\nu+1}(\kappa)/I_\nu(\kappa)`, computed without cancellation for large kappa
    (:func:`bessel_ratio_pair`)."""
    return bessel_ratio_pair(nu, kappa)[1]


def _ratio_series(nu: float, kappa: torch.Tensor) -> torch.Tensor:
    r""":math:`R_\nu(\kappa) = \frac{\kappa}{2(\nu+1)}\big(1 - \frac{\kappa^2}{4(\nu+1)(\nu+2)}\big) + O(\kappa^5)`."""
    return kappa / (2 * (nu + 1)) * (1 - kappa**2 / (4 * (nu + 1) * (nu + 2)))


def bessel_ratio(nu: float, kappa: torch.Tensor) -> torch.Tensor:
    r""":math:`R_\nu(\kappa) = I_{\nu+1}(\kappa)/I_\nu(\kappa)` for kappa >= 0 (R(0) = 0; :func:`bessel_ratio_pair`)."""
    return bessel_ratio_pair(nu, kappa)[0]


def log_sphere_mgf_scaled(nu: float, kappa: torch.Tensor) -> torch.Tensor:
    r""":math:`\log E_\theta[e^{\kappa u\cdot\theta}] - \kappa` for :math:`\theta` uniform on
    :math:`S^{k-1}`, :math:`\nu = k/2 - 1`, :math:`|u| = 1`:

    .. math:: \log\Gamma(\nu+1) + \nu\log(2/\kappa) + \log(I_\nu(\kappa)e^{-\kappa}),

    with the series :math:`\kappa^2/(4(\nu+1)) - \kappa^4/(32(\nu+1)^2(\nu+2)) - \kappa` near 0.
    """
    nu = _check_nu(nu)
    if (kappa < 0).any():
        raise ValueError("kappa must be >= 0")
    small = kappa < _KAPPA_SMALL
    k_small = torch.where(small, kappa, torch.zeros_like(kappa))
    k_rest = torch.where(small, torch.ones_like(kappa), kappa)
    rest = math.lgamma(nu + 1) + nu * torch.log(2 / k_rest) + log_ive(nu, k_rest)
    series = k_small**2 / (4 * (nu + 1)) - k_small**4 / (32 * (nu + 1) ** 2 * (nu + 2)) - k_small
    return torch.where(small, series, rest)
