r"""Kullback-Leibler divergences where exact or bounded.

* :func:`kl_gaussians`: closed form;
* :func:`kl_grid`: exact between laws on one grid (product laws: d times the 1-D value,
  see :func:`cmtheory.metrics.tv.product_divergences`);
* :func:`path_kl`: the KL between the true reverse chain and a sampler with Gaussian
  transitions, an upper bound on the output KL (data processing), so
  :math:`TV(q_0, p_0) \le \sqrt{KL_{path}/2}`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from cmtheory._checks import check_gaussians
from cmtheory.metrics.result import Estimate
from cmtheory.processes import DiscreteVP
from cmtheory.laws import GridLaw

__all__ = ["kl_gaussians", "kl_grid", "path_kl"]


def kl_gaussians(m1, C1, m2, C2) -> Estimate:
    r""":math:`KL(N(m_1,C_1)\|N(m_2,C_2)) = \tfrac12[\operatorname{tr}(C_2^{-1}C_1) + (m_2-m_1)^TC_2^{-1}(m_2-m_1) - d + \log\frac{\det C_2}{\det C_1}]`."""
    m1, C1, m2, C2 = check_gaussians(m1, C1, m2, C2)
    d = m1.size
    diff = m2 - m1
    kl = 0.5 * (np.trace(np.linalg.solve(C2, C1)) + diff @ np.linalg.solve(C2, diff) - d + np.linalg.slogdet(C2)[1] - np.linalg.slogdet(C1)[1])
    if not math.isfinite(kl):
        raise ValueError("KL of these m1, C1, m2, C2 exceeds float64's range (covariance scales or mean gaps too far apart)")
    return Estimate(float(kl), 0.0, 0, "gaussian closed form")


def kl_grid(p_law: GridLaw, q_law: GridLaw) -> Estimate:
    r"""Exact :math:`\sum_i p_i\log(p_i/q_i)` between laws on one grid (inf if q = 0 < p somewhere)."""
    if p_law.edges.shape != q_law.edges.shape or not np.allclose(p_law.edges, q_law.edges):
        raise ValueError("p_law and q_law must be on the same grid")
    p, q = p_law.masses, q_law.masses
    if (p < -1e-12).any() or (q < -1e-12).any():
        raise ValueError("masses must be >= 0 (up to 1e-12 round-off)")
    pos = p > 0
    if (q[pos] <= 0).any():
        return Estimate(math.inf, 0.0, p.size, "grid")
    return Estimate(float((p[pos] * np.log(p[pos] / q[pos])).sum()), 0.0, p.size, "grid")


def _gaussian_log_density(x, mean, M):
    """log N(x; mean, M M^T) for batched square factors M (n, d, d)."""
    d = x.shape[1]
    r = torch.linalg.solve(M, (x - mean)[..., None])[..., 0]
    return -0.5 * (r * r).sum(1) - torch.linalg.slogdet(M)[1] - 0.5 * d * math.log(2 * math.pi)


def path_kl(target, schedule: DiscreteVP, transition, n: int = 4096, generator: torch.Generator | None = None) -> Estimate:
    r"""KL from the true reverse chain to a Gaussian-transition sampler started at N(0, I).

    .. math::
        KL_{path} = KL(q_T\|N(0,I)) + \sum_{t=1}^T E_q\big[\log q_{t-1}(x_{t-1}) + \log N(x_t;\sqrt{\alpha_t}x_{t-1}, \beta_tI)
        - \log q_t(x_t) - \log p_t(x_{t-1}\mid x_t)\big],

    the true reverse transition written through Bayes' rule with the target's exact noisy
    log-densities; :math:`p_t(\cdot\mid x_t) = N(\text{mean}, MM^T)` from
    ``transition(t, y) -> GaussianTransition`` (M read off by applying the noise map to the
    basis). Each term is a Monte Carlo mean over n forward pairs (independent across t);
    the standard errors add in quadrature. ``extra["tv_upper"]`` is
    :math:`\sqrt{KL_{hi}/2}` at the upper 95% limit. Needs a target with a density at
    sigma = 0 (not singular); cost n d noise-map evaluations per step.
    """
    if target.singular:
        raise ValueError("path_kl needs a target with a density at sigma = 0 (the t = 1 term uses log q_0)")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    d = target.d
    eye = torch.eye(d, dtype=torch.float64)
    total, var = 0.0, 0.0
    # KL(q_T || N(0, I))
    aT, sT = schedule.channel(schedule.T)
    xT = target.sample_noisy(n, aT, sT, generator=g)
    term = target.log_prob(xT, aT, sT) - (-0.5 * (xT * xT).sum(1) - 0.5 * d * math.log(2 * math.pi))
    total += float(term.mean())
    var += float(term.var()) / n
    for t in range(schedule.T, 0, -1):
        beta = schedule.beta(t)
        a_prev, s_prev = schedule.channel(t - 1)
        a_t, s_t = schedule.channel(t)
        x_prev = target.sample_noisy(n, a_prev, s_prev, generator=g)
        w = torch.randn(x_prev.shape, generator=g, dtype=torch.float64)
        x_t = math.sqrt(1 - beta) * x_prev + math.sqrt(beta) * w
        log_fwd = -0.5 * (w * w).sum(1) - 0.5 * d * math.log(2 * math.pi * beta)
        log_rev_true = target.log_prob(x_prev, a_prev, s_prev) + log_fwd - target.log_prob(x_t, a_t, s_t)
        tr = transition(t, x_t)
        rows = transition(t, x_t.repeat_interleave(d, 0)).noise(eye.repeat(n, 1))  # rows M e_i per sample
        M = rows.reshape(n, d, d).transpose(1, 2)
        term = log_rev_true - _gaussian_log_density(x_prev, tr.mean, M)
        total += float(term.mean())
        var += float(term.var()) / n
    se = math.sqrt(var)
    hi = total + 1.96 * se
    return Estimate(total, se, n, "path KL (Monte Carlo)", extra={"tv_upper": math.sqrt(max(hi, 0.0) / 2), "steps": schedule.T})
