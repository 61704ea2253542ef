r"""Gaussian channels and noise schedules.

Every process in cmtheory is nothing but a map from its own steps or times to the
Gaussian channel

.. math::  x = \alpha X_0 + \sigma Z, \qquad Z \sim N(0, I_d),

and targets only ever see ``(alpha, sigma)``. Conversions between time conventions go
through the EDM noise level (noise-to-signal ratio) :math:`\lambda = \sigma / \alpha`:
the scaled variable :math:`x / \alpha = X_0 + \lambda Z` has a law that depends on
:math:`\lambda` alone, so two channels with the same :math:`\lambda` are the same
up to the scale :math:`\alpha`.

* discrete VP chain: :math:`\bar\alpha_t = \prod_{k\le t}(1-\beta_k)`,
  :math:`(\alpha, \sigma) = (\sqrt{\bar\alpha_t}, \sqrt{1-\bar\alpha_t})`,
  :math:`\lambda = \sqrt{(1-\bar\alpha)/\bar\alpha}`;
* continuous VP (linear :math:`\beta(t)` on [0, 1]);
* VE / EDM: :math:`(\alpha, \sigma) = (1, t)`;
* TrigFlow (Lu & Song 2024): :math:`x_t = \cos t\, X_0 + \sin t\, \sigma_d Z`, so
  :math:`(\alpha, \sigma) = (\cos t, \sigma_d \sin t)` and :math:`\lambda = \sigma_d \tan t`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from cmtheory._checks import check_positive, check_positive_int

__all__ = [
    "DiscreteVP",
    "ContinuousVP",
    "EDM",
    "TrigFlow",
    "theory_schedule",
    "linear_schedule",
    "cosine_schedule",
    "lam_from_abar",
    "abar_from_lam",
    "trigflow_t_from_lam",
    "lam_from_trigflow_t",
]


def _as_f64(t) -> torch.Tensor:
    return torch.as_tensor(t, dtype=torch.float64)


def _in_range(value, name: str, lo: float = 0.0, hi: float = math.inf, lo_open: bool = False, hi_open: bool = False, hi_label: str | None = None) -> torch.Tensor:
    """``value`` as a float64 tensor (a tensor stays on its device), every entry in the interval;
    NaN, complex values or an entry outside it are a ValueError naming ``name`` and the interval."""
    t = value if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))
    if t.is_complex():
        raise ValueError(f"{name} must be real, got complex values")
    t = t.to(torch.float64)
    ok = (t > lo if lo_open else t >= lo) & (t < hi if hi_open else t <= hi)  # False at NaN
    if not bool(ok.all()):
        bad = t[~ok].flatten()[0].item()
        raise ValueError(f"{name} must lie in {'(' if lo_open else '['}{lo:g}, {hi_label or f'{hi:g}'}{')' if hi_open else ']'}, got {bad!r}")
    return t


def lam_from_abar(abar):
    r"""EDM noise level of a VP channel: :math:`\lambda = \sqrt{(1-\bar\alpha)/\bar\alpha}`."""
    abar = _in_range(abar, "abar", 0.0, 1.0, lo_open=True)
    return torch.sqrt((1 - abar) / abar)


def abar_from_lam(lam):
    r"""Inverse of :func:`lam_from_abar`: :math:`\bar\alpha = 1 / (1 + \lambda^2)`."""
    lam = _in_range(lam, "lam (EDM sigma)")
    return 1 / (1 + lam**2)


def trigflow_t_from_lam(lam, sigma_d: float = 0.5):
    r"""TrigFlow time of an EDM noise level: :math:`t = \arctan(\lambda / \sigma_d)`."""
    lam = _in_range(lam, "lam (EDM sigma)")
    return torch.atan(lam / check_positive(sigma_d, "sigma_d"))


def lam_from_trigflow_t(t, sigma_d: float = 0.5):
    r"""EDM noise level of a TrigFlow time: :math:`\lambda = \sigma_d \tan t`."""
    t = _in_range(t, "t (TrigFlow time)", 0.0, math.pi / 2, hi_open=True, hi_label="pi/2")
    return check_positive(sigma_d, "sigma_d") * torch.tan(t)


@dataclass(frozen=True)
class DiscreteVP:
    r"""The discrete VP chain :math:`X_t = \sqrt{1-\beta_t} X_{t-1} + \sqrt{\beta_t} W_t`.

    Parameters
    ----------
    betas : tensor of shape (T,)
        :math:`\beta_1, \dots, \beta_T`, each in (0, 1).

    Notes
    -----
    Steps are indexed ``t = 0..T``; step 0 is the data (:math:`\bar\alpha_0 = 1`) and
    :math:`X_t = \sqrt{\bar\alpha_t} X_0 + \sqrt{1-\bar\alpha_t} Z`.
    """

    betas: torch.Tensor

    def __post_init__(self):
        b = _as_f64(self.betas)
        if b.ndim != 1 or b.numel() == 0:
            raise ValueError(f"betas must be a non-empty 1-D tensor, got shape {tuple(b.shape)}")
        if not torch.isfinite(b).all() or (b <= 0).any() or (b >= 1).any():
            raise ValueError("betas must all lie in the open interval (0, 1)")
        object.__setattr__(self, "betas", b)

    @property
    def T(self) -> int:
        """Number of steps."""
        return self.betas.numel()

    @property
    def abar(self) -> torch.Tensor:
        r""":math:`\bar\alpha_t` for t = 0..T (shape (T+1,), abar[0] = 1)."""
        return torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - self.betas, 0)])

    def beta(self, t: int) -> float:
        r""":math:`\beta_t` for t in 1..T."""
        self._check_step(t, lo=1)
        return float(self.betas[t - 1])

    def channel(self, t: int) -> tuple[float, float]:
        r"""Channel of step t: :math:`(\sqrt{\bar\alpha_t}, \sqrt{1-\bar\alpha_t})`."""
        self._check_step(t, lo=0)
        ab = float(self.abar[t])
        return math.sqrt(ab), math.sqrt(1 - ab)

    def lam(self, t: int) -> float:
        r"""EDM noise level of step t, :math:`\sqrt{(1-\bar\alpha_t)/\bar\alpha_t}`."""
        a, s = self.channel(t)
        return s / a

    def _check_step(self, t, lo):
        if isinstance(t, bool) or not isinstance(t, int) or not lo <= t <= self.T:
            raise ValueError(f"t must be an int step in {lo}..{self.T}, got {t!r}")


def theory_schedule(T: int, c0: float = 2.0, c1: float = 8.0) -> DiscreteVP:
    r"""The schedule of Li, Wei, Chen & Chi (2023), used by Li-Huang-Wei and Li & Cai.

    .. math:: \beta_1 = T^{-c_0}, \quad
              \beta_{t+1} = \frac{c_1 \log T}{T}\min\Big(\beta_1\big(1+\frac{c_1\log T}{T}\big)^t, 1\Big).

    :math:`\bar\alpha_T` only reaches ~0 when ``c1 > c0 + 1`` with margin
    (c0 = 2, c1 = 8 gives :math:`\bar\alpha_T \approx T^{-5}`).
    """
    check_positive_int(T, "T", 2)
    c0, c1 = check_positive(c0, "c0"), check_positive(c1, "c1")
    rate = c1 * math.log(T) / T
    if rate >= 1:
        raise ValueError(f"c1 log T / T must be < 1 so that every beta < 1; got {rate:.3g} (increase T)")
    beta1 = T ** (-c0)
    t = torch.arange(1, T, dtype=torch.float64)
    rest = rate * torch.clamp(beta1 * (1 + rate) ** t, max=1.0)  # the min(., 1) of the definition
    return DiscreteVP(torch.cat([torch.tensor([beta1], dtype=torch.float64), rest]))


def linear_schedule(T: int, beta_min: float = 0.1, beta_max: float = 20.0) -> DiscreteVP:
    r"""Linear VP schedule :math:`\beta_t = (\beta_{min} + (\beta_{max}-\beta_{min})\frac{t-1}{T-1}) / T`.

    The discretisation of :math:`\beta(s) = \beta_{min} + s(\beta_{max}-\beta_{min})`,
    s in [0, 1] (DDPM's 1e-4..0.02 at T = 1000 is beta_min = 0.1, beta_max = 20).
    """
    check_positive_int(T, "T", 2)
    bmin, bmax = check_positive(beta_min, "beta_min"), check_positive(beta_max, "beta_max")
    if bmax < bmin:
        raise ValueError(f"beta_max must be >= beta_min, got {bmax} < {bmin}")
    if bmax / T >= 1:
        raise ValueError(f"beta_max / T must be < 1, got {bmax / T:.3g} (increase T)")
    t = torch.arange(T, dtype=torch.float64)
    return DiscreteVP((bmin + (bmax - bmin) * t / (T - 1)) / T)


def cosine_schedule(T: int, s: float = 0.008, max_beta: float = 0.999) -> DiscreteVP:
    r"""Cosine schedule (Nichol & Dhariwal 2021): :math:`\bar\alpha_t = f(t)/f(0)`,
    :math:`f(t) = \cos^2\big(\frac{t/T + s}{1 + s}\frac{\pi}{2}\big)`,
    :math:`\beta_t = \min(1 - \bar\alpha_t/\bar\alpha_{t-1}, \beta_{max})`.

    The cap ``max_beta`` is part of the published definition (the last beta would be 1).
    """
    check_positive_int(T, "T", 2)
    check_positive(s, "s")
    if not 0 < max_beta < 1:
        raise ValueError(f"max_beta must lie in (0, 1), got {max_beta!r}")
    t = torch.arange(T + 1, dtype=torch.float64)
    f = torch.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
    abar = f / f[0]
    return DiscreteVP(torch.clamp(1 - abar[1:] / abar[:-1], max=max_beta))


@dataclass(frozen=True)
class ContinuousVP:
    r"""Continuous VP SDE with :math:`\beta(t) = \beta_{min} + t(\beta_{max}-\beta_{min})`, t in [0, 1].

    :math:`\alpha(t) = \exp(-\tfrac12\int_0^t\beta)`, :math:`\sigma(t) = \sqrt{1-\alpha(t)^2}`.
    """

    beta_min: float = 0.1
    beta_max: float = 20.0

    def __post_init__(self):
        check_positive(self.beta_min, "beta_min")
        if self.beta_max < self.beta_min:
            raise ValueError("beta_max must be >= beta_min")

    def _integral(self, t):
        return self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t**2

    def channel(self, t):
        r""":math:`(\alpha(t), \sigma(t))` for t in [0, 1]."""
        log_alpha = -0.5 * self._integral(_in_range(t, "t (ContinuousVP time)", 0.0, 1.0))
        return torch.exp(log_alpha), torch.sqrt(-torch.expm1(2 * log_alpha))

    def lam(self, t):
        r""":math:`\lambda(t) = \sqrt{e^{\int_0^t\beta} - 1}`."""
        return torch.sqrt(torch.expm1(self._integral(_in_range(t, "t (ContinuousVP time)", 0.0, 1.0))))

    def time(self, lam):
        r"""Inverse of :meth:`lam`: the root of :math:`\int_0^t\beta = \log(1+\lambda^2)`,
        for :math:`\lambda` up to :meth:`lam` (1)."""
        L = torch.log1p(_in_range(lam, "lam (EDM sigma)", 0.0, float(self.lam(1.0))) ** 2)
        db = self.beta_max - self.beta_min
        if db == 0:
            return L / self.beta_min
        return (-self.beta_min + torch.sqrt(self.beta_min**2 + 2 * db * L)) / db


@dataclass(frozen=True)
class EDM:
    r"""Variance-exploding / EDM process: :math:`(\alpha, \sigma) = (1, t)`, :math:`\lambda = t`."""

    def channel(self, t):
        """(1, t)."""
        t = _in_range(t, "t (EDM sigma)")
        return torch.ones_like(t), t

    def lam(self, t):
        """lambda = t."""
        return self.channel(t)[1]

    def time(self, lam):
        """t = lambda."""
        return _in_range(lam, "lam (EDM sigma)")


@dataclass(frozen=True)
class TrigFlow:
    r"""TrigFlow (Lu & Song 2024): :math:`x_t = \cos t X_0 + \sin t \sigma_d Z`, t in [0, pi/2]."""

    sigma_d: float = 0.5

    def __post_init__(self):
        check_positive(self.sigma_d, "sigma_d")

    def channel(self, t):
        r""":math:`(\cos t, \sigma_d \sin t)`."""
        t = _in_range(t, "t (TrigFlow time)", 0.0, math.pi / 2, hi_label="pi/2")
        return torch.cos(t), self.sigma_d * torch.sin(t)

    def lam(self, t):
        r""":math:`\lambda = \sigma_d \tan t`."""
        return lam_from_trigflow_t(t, self.sigma_d)

    def time(self, lam):
        r""":math:`t = \arctan(\lambda/\sigma_d)`."""
        return trigflow_t_from_lam(lam, self.sigma_d)
