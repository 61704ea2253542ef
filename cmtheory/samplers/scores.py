r"""Where a sampler's score comes from.

A score function is any callable ``score(x, alpha, sigma) -> (n, d)``: a target's exact
``target.score``, a network wrapped to that signature, or a target plus a controlled
perturbation (so the score-error term of the bounds can be swept).
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch

from cmtheory._checks import check_positive_int
from cmtheory.laws.transitions import ScoreFn

__all__ = ["ScoreFn", "perturbed_score", "PerturbedScore", "controlled_perturbation", "realised_errors", "denoiser_from_score", "CountingScore"]


def perturbed_score(
    score: ScoreFn,
    eps: float,
    d: int,
    generator: torch.Generator | None = None,
    kind: str = "fourier",
    features: int = 64,
    length_scale: float = 1.0,
) -> ScoreFn:
    r"""A score with a controlled L2 error :math:`\hat s = s + e`.

    Parameters
    ----------
    score : callable
        The exact score ``score(x, alpha, sigma)``.
    eps : float
        The L2 error :math:`(E|e(x)|^2)^{1/2}`, >= 0.
    d : int
        Dimension.
    generator : torch.Generator, optional
        Draws the perturbation field once.
    kind : {"fourier", "bias"}
        ``"bias"``: :math:`e = \epsilon u` with a fixed unit vector u, so the L2 error is
        exactly eps under any law of x. ``"fourier"``: a smooth random field
        :math:`e(x) = \epsilon\sqrt{2/m}\sum_{j=1}^m u_j \cos(\omega_j\cdot x + \phi_j)`,
        :math:`u_j` unit vectors, :math:`\omega_j \sim N(0, I/\ell^2)`, :math:`\phi_j \sim U[0, 2\pi)`,
        whose mean-square size is :math:`\epsilon^2` on average over the field (for any x).
    features, length_scale
        m and :math:`\ell` of the Fourier field.
    """
    if not (eps >= 0 and math.isfinite(eps)):
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
    check_positive_int(d, "d")
    if kind == "bias":
        u = torch.randn(d, generator=generator, dtype=torch.float64)
        u = eps * u / u.norm()

        def biased(x, alpha, sigma):
            return score(x, alpha, sigma) + u.to(x)

        return biased
    if kind != "fourier":
        raise ValueError(f"kind must be 'fourier' or 'bias', got {kind!r}")
    m = check_positive_int(features, "features")
    U = torch.randn(m, d, generator=generator, dtype=torch.float64)
    U = U / U.norm(dim=1, keepdim=True) * eps * math.sqrt(2 / m)
    W = torch.randn(d, m, generator=generator, dtype=torch.float64) / length_scale
    phi = 2 * math.pi * torch.rand(m, generator=generator, dtype=torch.float64)

    def fourier(x, alpha, sigma):
        return score(x, alpha, sigma) + torch.cos(x @ W.to(x) + phi.to(x)) @ U.to(x)

    return fourier


class PerturbedScore(NamedTuple):
    r"""A perturbed score :math:`\hat s = s + e` with its Hessian-vector product and the error field."""

    score: ScoreFn
    hvp: Callable
    error: ScoreFn
    eps: float
    eps_J: float


def _phase_weights(target, omega: float, phase: float, alpha, sigma) -> tuple[float, float]:
    r"""(a, b) with :math:`a^2 + b^2 = 2` and :math:`E_q[\cos 2u]\cos 2\theta + E_q[\sin 2u]\sin 2\theta = 0`,
    :math:`u = \omega x + \phi`, under the channel's law :math:`q = \sum_k w_k N(\alpha\mu_k, \alpha^2 c_k + \sigma^2)`
    (its characteristic function: :math:`E_q e^{2iu} = \sum_k w_k e^{-2\omega^2 v_k + 2i(\omega\alpha\mu_k + \phi)}`)."""
    w = target.weights.double()
    mu = float(alpha) * target.means[:, 0].double()
    v = float(alpha) ** 2 * target.component_covariances()[:, 0, 0].double() + float(sigma) ** 2
    damp = w * torch.exp(-2 * omega**2 * v)
    ec = float((damp * torch.cos(2 * (omega * mu + phase))).sum())
    es = float((damp * torch.sin(2 * (omega * mu + phase))).sum())
    theta = 0.5 * (math.atan2(es, ec) + math.pi / 2)
    return math.sqrt(2) * math.cos(theta), math.sqrt(2) * math.sin(theta)


def controlled_perturbation(target, eps: float, eps_J: float, phase: float = 0.0) -> PerturbedScore:
    r"""A 1-D score perturbation with L2 error exactly ``eps`` and Jacobian error exactly ``eps_J``
    under every channel's law :math:`q_{\alpha,\sigma}` of a 1-D Gaussian mixture.

    .. math::
        e_{\alpha,\sigma}(x) = \epsilon\,(a\cos u + b\sin u),\qquad u = \omega x + \phi,\quad
        \omega = \epsilon_J/\epsilon,

    with :math:`(a, b) = \sqrt2(\cos\theta, \sin\theta)` chosen per channel so that the cross
    moments vanish: then :math:`E_q e^2 = \epsilon^2(1 + \cos 2\theta\,E\cos 2u + \sin 2\theta\,E\sin 2u)
    = \epsilon^2` and :math:`E_q e'^2 = \epsilon^2\omega^2(1 - \dots) = \epsilon_J^2`, the moments
    of :math:`\cos 2u, \sin 2u` in closed form from the mixture's characteristic function.
    ``eps_J = 0`` is a constant bias of size eps; a larger ``eps_J`` at fixed ``eps`` is a faster
    oscillation, so the two errors are set independently. The field is fixed (no randomness
    beyond ``phase``), so every exact-law engine takes it. ``hvp`` is the perturbed score's,
    :math:`\nabla^2\log q\,v + e'(x)v`.
    """
    from cmtheory.targets import GaussianMixture

    if not isinstance(target, GaussianMixture) or target.d != 1:
        raise ValueError(f"target must be a 1-D GaussianMixture, got {type(target).__name__} with d={getattr(target, 'd', None)}")
    for name, v in (("eps", eps), ("eps_J", eps_J), ("phase", phase)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{name} must be a finite number, got {v!r}")
    if eps < 0 or eps_J < 0:
        raise ValueError(f"eps and eps_J must be >= 0, got eps={eps!r}, eps_J={eps_J!r}")
    if eps == 0 and eps_J > 0:
        raise ValueError("eps_J > 0 needs eps > 0 (a field with no L2 size has no Jacobian)")
    omega = eps_J / eps if eps > 0 else 0.0

    def error(x, alpha, sigma):
        a, b = _phase_weights(target, omega, phase, alpha, sigma)
        u = omega * x + phase
        return eps * (a * torch.cos(u) + b * torch.sin(u))

    def score(x, alpha, sigma):
        return target.score(x, alpha, sigma) + error(x, alpha, sigma)

    def hvp(x, v, alpha, sigma):
        a, b = _phase_weights(target, omega, phase, alpha, sigma)
        u = omega * x + phase
        return target.hvp(x, v, alpha, sigma) + eps * omega * (b * torch.cos(u) - a * torch.sin(u)) * v

    return PerturbedScore(score, hvp, error, float(eps), float(eps_J))


def realised_errors(perturbed: PerturbedScore, target, alpha: float, sigma: float, n: int = 100_000, generator: torch.Generator | None = None) -> dict:
    r"""Monte Carlo L2 and Jacobian errors of a perturbed score under the channel's law:
    :math:`(E|\hat s - s|^2)^{1/2}` and :math:`(E\|\nabla(\hat s - s)\|_F^2)^{1/2}`, the Jacobian by
    autograd (independent of any closed form). Returns {"eps": Estimate, "eps_J": Estimate},
    standard errors by the delta method from the mean squares'."""
    from cmtheory.metrics.result import Estimate

    check_positive_int(n, "n", 2)
    x = target.sample_noisy(n, alpha, sigma, generator).requires_grad_(True)
    e = perturbed.score(x, alpha, sigma) - target.score(x, alpha, sigma)
    jac = torch.stack([torch.autograd.grad(e[:, i].sum(), x, retain_graph=True)[0] for i in range(e.shape[1])], 1)
    out = {}
    for name, sq in (("eps", (e.detach() ** 2).sum(1)), ("eps_J", (jac**2).sum((1, 2)))):
        m, se_m = float(sq.mean()), float(sq.std() / math.sqrt(n))
        root = math.sqrt(m)
        out[name] = Estimate(root, se_m / (2 * root) if root > 0 else 0.0, n, "monte carlo under q_t")
    return out


def denoiser_from_score(score: ScoreFn):
    r"""Tweedie's denoiser :math:`D(x) = (x + \sigma^2 s(x)) / \alpha` of a score function."""

    def denoiser(x, alpha, sigma):
        return (x + sigma**2 * score(x, alpha, sigma)) / alpha

    return denoiser


class CountingScore:
    """Wraps a score (or denoiser) and counts its calls and evaluated rows.

    Attributes
    ----------
    calls : int
        Number of calls.
    rows : int
        Total number of points evaluated.
    """

    def __init__(self, fn):
        self.fn, self.calls, self.rows = fn, 0, 0

    def __call__(self, x, alpha, sigma):
        self.calls += 1
        self.rows += x.shape[0]
        return self.fn(x, alpha, sigma)
