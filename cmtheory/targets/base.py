r"""The common interface of every target: exact noisy-channel quantities.

A target is a law of :math:`X_0` in :math:`\mathbb{R}^d`; all its methods take the
Gaussian channel :math:`x = \alpha X_0 + \sigma Z` and return quantities of the law
:math:`q_{\alpha,\sigma}` of x:

* ``log_prob(x, alpha, sigma)``  :math:`\log q(x)`
* ``score(x, alpha, sigma)``     :math:`\nabla \log q(x)`
* ``denoiser(x, alpha, sigma)``  :math:`E[X_0 \mid x] = (x + \sigma^2\nabla\log q(x))/\alpha` (Tweedie)
* ``hvp(x, v, alpha, sigma)``    :math:`\nabla^2 \log q(x)\, v`

Inputs are (n, d) tensors of any float dtype and device; ``alpha`` and ``sigma`` are
scalars or (n,) tensors. Parameters are stored in float64 and cast to the input's
dtype and device on first use (cached). An empty batch (n = 0) gives empty results.
"""

from __future__ import annotations

import abc

import torch

from cmtheory._checks import check_channel, check_points, check_positive_int

__all__ = ["Target"]


class Target(abc.ABC):
    """Abstract base class of the tractable targets.

    Subclasses set ``self.d`` and implement ``_log_prob``, ``_score``, ``_hvp`` and
    ``sample``; they may override ``_denoiser`` with a direct formula. A subclass whose
    law is singular at sigma = 0 sets ``singular = True``.
    """

    d: int
    singular: bool = False
    #: public methods evaluated in float64 for lower-precision inputs (results cast back)
    float64_methods: tuple = ("hvp",)

    # -- parameters on the input's dtype and device ---------------------------------
    def _cast(self, ref: torch.Tensor) -> dict[str, torch.Tensor]:
        key = (ref.dtype, ref.device)
        cache = self.__dict__.setdefault("_cast_cache", {})
        if key not in cache:
            cache[key] = {
                k: v.to(dtype=ref.dtype, device=ref.device) for k, v in self._params().items()
            }
        return cache[key]

    @abc.abstractmethod
    def _params(self) -> dict[str, torch.Tensor]:
        """Float64 tensors that define the target."""

    # -- public API with validation -------------------------------------------------
    def _prepare(self, x, alpha, sigma):
        check_points(x, self.d)
        return check_channel(alpha, sigma, x, sigma_positive=self.singular)

    def _evaluate(self, method: str, x, alpha, sigma, *others):
        """Validate, then run ``_<method>`` on x (and ``others``): in float64 for the methods named
        in ``float64_methods`` (the channel too, from the caller's own alpha and sigma), with
        the result cast back to x's dtype; empty results for an empty batch."""
        wide = method in self.float64_methods and x.dtype != torch.float64
        xe = x.double() if wide else x
        a, s = self._prepare(xe, alpha, sigma)
        if x.shape[0] == 0:
            return x.new_empty(0) if method == "log_prob" else x.new_empty(x.shape)
        out = getattr(self, f"_{method}")(xe, *(o.double() if wide else o for o in others), a, s)
        return out.to(x.dtype) if wide else out

    def log_prob(self, x: torch.Tensor, alpha=1.0, sigma=0.0) -> torch.Tensor:
        r"""Log-density :math:`\log q_{\alpha,\sigma}(x)`, shape (n,)."""
        return self._evaluate("log_prob", x, alpha, sigma)

    def score(self, x: torch.Tensor, alpha=1.0, sigma=0.0) -> torch.Tensor:
        r"""Score :math:`\nabla_x \log q_{\alpha,\sigma}(x)`, shape (n, d)."""
        return self._evaluate("score", x, alpha, sigma)

    def denoiser(self, x: torch.Tensor, alpha=1.0, sigma=0.0) -> torch.Tensor:
        r"""Posterior mean :math:`E[X_0 \mid \alpha X_0 + \sigma Z = x]`, shape (n, d)."""
        return self._evaluate("denoiser", x, alpha, sigma)

    def hvp(self, x: torch.Tensor, v: torch.Tensor, alpha=1.0, sigma=0.0) -> torch.Tensor:
        r"""Hessian-vector product :math:`\nabla^2 \log q_{\alpha,\sigma}(x)\, v`, shape (n, d);
        ``v`` of x's shape, dtype and device.

        Computed in float64 whatever the input dtype, then cast back: its terms are of size
        :math:`(|x|/\text{variance})^2` and cancel (a mixture's Hessian is a difference of
        such terms), so float32 arithmetic keeps no correct digit far from the data or at
        small sigma (and overflows below sigma ~ 1e-10)."""
        check_points(v, self.d, "v")
        if v.shape != x.shape:
            raise ValueError(f"v must have the shape of x {tuple(x.shape)}, got {tuple(v.shape)}")
        if v.dtype != x.dtype or v.device != x.device:
            raise ValueError(f"v must have x's dtype and device ({x.dtype}, {x.device}), got ({v.dtype}, {v.device})")
        return self._evaluate("hvp", x, alpha, sigma, v)

    def _denoiser(self, x, a, s):
        return (x + s**2 * self._score(x, a, s)) / a

    @abc.abstractmethod
    def _log_prob(self, x, a, s): ...

    @abc.abstractmethod
    def _score(self, x, a, s): ...

    @abc.abstractmethod
    def _hvp(self, x, v, a, s): ...

    @abc.abstractmethod
    def sample(self, n: int, generator: torch.Generator | None = None, dtype=torch.float64, device=None):
        """Draw n samples of X0, shape (n, d)."""

    def sample_noisy(self, n, alpha, sigma, generator=None, dtype=torch.float64, device=None):
        r"""Draw n samples of :math:`\alpha X_0 + \sigma Z`."""
        check_positive_int(n, "n")
        x0 = self.sample(n, generator, dtype=dtype, device=device)
        a, s = check_channel(alpha, sigma, x0)
        z = torch.randn(x0.shape, generator=generator, dtype=dtype, device=x0.device)
        return a * x0 + s * z


def _randn(shape, generator, dtype, device):
    device = device if device is not None else (generator.device if generator is not None else "cpu")
    return torch.randn(shape, generator=generator, dtype=dtype, device=device)
