r"""Kullback-Leibler divergences where exact or bounded.

* :func:`kl_gaussians`: closed form;
* :func:`kl_grid`: exact between laws on one grid (product laws: d times the 1-D value,
  see :func:`cmtheory.metrics.tv.product_divergences`; rotation-invariant laws: the KL of their
  radial laws, the densities :math:`f(r)/(|S^{d-1}|r^{d-1})` having one ratio on each sphere);
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


def _merge_unresolved(p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Blocks of consecutive cells in which every cell with q <= 0 joins the next cell with q > 0 (the
    last ones join the last such cell); returns the blocks' p and q masses. Needs a cell with q > 0."""
    ends = np.flatnonzero(q > 0)  # block b: the cells after end b - 1 up to and including end b
    block = np.minimum(np.searchsorted(ends, np.arange(q.size)), ends.size - 1)
    return np.bincount(block, p, ends.size), np.bincount(block, q, ends.size)


def kl_grid(p_law: GridLaw, q_law: GridLaw, tail: float = 1e-9) -> Estimate:
    r""":math:`KL(p\|q) = \sum_i p_i\log(p_i/q_i)` between two laws on one grid.

    Exact on the grid where every cell holding p-mass holds q-mass. Richardson-extrapolated laws
    (:func:`cmtheory.laws.richardson_law`) carry round-off-sized negative masses in their tails;
    a cell with :math:`q_i \le 0` there makes the sum infinite although both laws have a positive
    density. So each cell with :math:`q_i \le 0` is merged with the next cell with :math:`q_i > 0`
    (the last ones with the last such cell; again while a block's q-mass is <= 0), and the KL is taken over the blocks: the KL of the
    two laws on a coarser partition, a lower bound of the grid's by data processing, equal to it
    when nothing is merged. The merged cells' p-mass is reported (``extra["merged_mass"]``) and
    must be at most ``tail``: beyond it q has no resolved mass where p has, and the answer is inf.
    Negative masses (at least -1e-12 each) count as the round-off they are.

    ``se`` is a first-order bound on what the laws' grid errors :math:`\epsilon_p, \epsilon_q`
    (TV, ``GridLaw.grid_error``; 0 for exact laws) move the value:
    :math:`2\epsilon_q\max_i p_i/q_i + 2\epsilon_p\max_i|1 + \log(p_i/q_i)|`, over the blocks
    holding more than 1e-12 of p; plus the lost masses' share of the same bound.

    Parameters
    ----------
    p_law, q_law : GridLaw
        Laws on one grid.
    tail : float
        Largest p-mass allowed in cells merged for want of q-mass, in [0, 1).

    Returns
    -------
    Estimate
        ``extra``: ``merged_cells``, ``merged_mass``.

    Raises
    ------
    ValueError
        Different grids, a mass below -1e-12, or ``tail`` outside [0, 1).
    """
    if p_law.edges.shape != q_law.edges.shape or not np.allclose(p_law.edges, q_law.edges):
        raise ValueError("p_law and q_law must be on the same grid")
    if not 0 <= tail < 1:
        raise ValueError(f"tail must be in [0, 1), got {tail!r}")
    p, q = p_law.masses, q_law.masses
    if (p < -1e-12).any() or (q < -1e-12).any() or not (np.isfinite(p).all() and np.isfinite(q).all()):
        raise ValueError("masses must be finite and >= 0 (up to 1e-12 round-off)")
    p = np.clip(p, 0.0, None)
    held = p > 0
    merged = held & (q <= 0)
    merged_mass = float(p[merged].sum())
    extra = {"merged_cells": int(merged.sum()), "merged_mass": merged_mass}
    if merged_mass > tail:
        return Estimate(math.inf, 0.0, p.size, "grid", extra=extra)
    P, Q = p, q
    while (Q <= 0).any() and (Q > 0).any():  # a block whose negative round-off outweighs its cell joins the next
        P, Q = _merge_unresolved(P, Q)
    if ((Q <= 0) & (P > 0)).any():
        return Estimate(math.inf, 0.0, p.size, "grid", extra=extra)
    on = P > 0
    ratio = P[on] / Q[on]
    value = float((P[on] * np.log(ratio)).sum())
    heavy = P[on] > 1e-12
    eps_p = (p_law.grid_error or 0.0) + 0.5 * p_law.lost
    eps_q = (q_law.grid_error or 0.0) + 0.5 * q_law.lost
    se = 2 * eps_q * float(ratio[heavy].max(initial=0.0)) + 2 * eps_p * float(np.abs(1 + np.log(ratio[heavy])).max(initial=0.0))
    return Estimate(value, se, p.size, "grid", extra=extra)


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
