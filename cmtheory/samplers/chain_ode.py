r"""Deterministic samplers on the discrete VP chain (docs/papers.md, section E).

They share the stochastic samplers' signature without the generator,
``sampler(score, schedule, y, *, t_stop=0, callback=None, return_trajectory=False, progress=False)``:
``y`` is :math:`X_T`, the loop runs t = T, ..., t_stop + 1 and returns :math:`X_{t_{stop}}`.
Notation: :math:`\bar\alpha_t` the chain's cumulative product, :math:`\tau = 1 - \bar\alpha`,
:math:`\lambda_t = \sqrt{(1-\bar\alpha_t)/\bar\alpha_t}` (the EDM noise level) and
:math:`\epsilon_t(x) = -\sqrt{1-\bar\alpha_t}\, s_t(x)` the noise prediction (``noise_pred``).

In :math:`y = x/\sqrt{\bar\alpha}` the probability-flow ODE reads :math:`dy/d\lambda = \epsilon`,
equivalently :math:`d(x/\sqrt{1-\tau}) = -\tfrac12 (1-\tau)^{-3/2} s_\tau(x)\, d\tau`:

* :func:`li_icml2024_ode` integrates :math:`\epsilon` extrapolated linearly in :math:`\bar\alpha`
  from the last two evaluations exactly in :math:`\lambda` (an Adams-Bashforth-2 step);
* :func:`heroism` integrates the Lagrange interpolant of :math:`(1-\tau)^{-3/2}s_\tau` on K nodes
  per step, found by N rounds of successive refinement (K-th order);
* :func:`on_vp_chain` runs any EDM-variable solver of :mod:`cmtheory.samplers.ode` (DDIM, Heun,
  DPM-Solver-2, DPM-Solver++(2M)) on the chain's own levels :math:`\lambda_T, \dots, \lambda_{t_{stop}}`.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from cmtheory._checks import check_positive_int
from cmtheory.processes import DiscreteVP
from cmtheory.samplers.scores import ScoreFn
from cmtheory.samplers.stochastic import check_chain_inputs, run_chain

__all__ = ["li_icml2024_ode", "li_icml2024_ode_weight", "heroism", "heroism_weights", "on_vp_chain"]


def li_icml2024_ode_weight(abar_prev: float, abar_t: float, abar_next: float) -> float:
    r"""The weight :math:`c_t` of the ICML 2024 deterministic sampler's correction.

    .. math::
        c_t = \frac{\sqrt{\bar\alpha_{t-1}}}{\bar\alpha_t - \bar\alpha_{t+1}}\Big[
        \bar\alpha_t\lambda_{t-1} + \arcsin\sqrt{\bar\alpha_{t-1}}
        - \bar\alpha_t\lambda_t - \arcsin\sqrt{\bar\alpha_t}\Big]
        = -\frac{\sqrt{\bar\alpha_{t-1}}}{\bar\alpha_t - \bar\alpha_{t+1}}\int_{\lambda_t}^{\lambda_{t-1}} (\bar\alpha(\lambda) - \bar\alpha_t)\, d\lambda,

    since :math:`\bar\alpha(\lambda) = 1/(1+\lambda^2)` integrates to :math:`\arctan\lambda =
    \arccos\sqrt{\bar\alpha}`. Arguments are :math:`\bar\alpha_{t-1}, \bar\alpha_t, \bar\alpha_{t+1}`.
    The arcsines are evaluated as :math:`\arcsin\sqrt{\bar\alpha} = \pi/2 - \arctan\lambda`, which
    keeps full precision as :math:`\bar\alpha \to 1` (the arcsine of a number near 1 does not).
    """
    lam_prev = math.sqrt((1 - abar_prev) / abar_prev)
    lam_t = math.sqrt((1 - abar_t) / abar_t)
    bracket = abar_t * (lam_prev - lam_t) + math.atan(lam_t) - math.atan(lam_prev)
    return math.sqrt(abar_prev) / (abar_t - abar_next) * bracket


def li_icml2024_ode(score: ScoreFn, schedule: DiscreteVP, y, *, t_stop=0, callback=None, return_trajectory=False, progress=False):
    r"""Accelerated deterministic sampler of Li, Huang, Efimov, Wei, Chi & Chen (ICML 2024), as
    published in the authors' code (TimofeyEfimov/AcceleratedDiffusionSamplers, ``denoising.py``).

    .. math::
        X_{t-1} = \mathrm{DDIM}_t(X_t) + c_t\big(\epsilon_{t+1}(X_{t+1}) - \epsilon_t(X_t)\big),\qquad
        \mathrm{DDIM}_t(x) = \sqrt{\bar\alpha_{t-1}}\,\frac{x - \sqrt{1-\bar\alpha_t}\,\epsilon_t}{\sqrt{\bar\alpha_t}}
        + \sqrt{1-\bar\alpha_{t-1}}\,\epsilon_t,

    with :math:`c_t` from :func:`li_icml2024_ode_weight`; the first step (no earlier
    :math:`\epsilon`) is plain DDIM. One score evaluation per step: the previous one is reused.

    Reading: DDIM integrates :math:`dy/d\lambda = \epsilon` with :math:`\epsilon` frozen; this
    rule extrapolates :math:`\epsilon` linearly in :math:`\bar\alpha` through its last two values and
    integrates that line exactly in :math:`\lambda` — an Adams-Bashforth-2 step. The authors claim
    TV = O(1/T^2); :mod:`experiments.accelerated` measures what it gives.

    The iterates and noise predictions live in two buffers each, used in turn (no allocation per
    step beyond the score's own): ``callback`` sees an iterate whose storage is reused two steps
    later, so a callback that keeps it must copy it.
    """
    abar = schedule.abar.tolist()
    prev = {}

    buffers = {}  # the iterates and the noise predictions, two of each used in turn

    def step(t, x):
        if not buffers:
            buffers.update(out=(torch.empty_like(x), torch.empty_like(x)), eps=(torch.empty_like(x), torch.empty_like(x)))
        a, s = math.sqrt(abar[t]), math.sqrt(1 - abar[t])
        a_prev, s_prev = math.sqrt(abar[t - 1]), math.sqrt(1 - abar[t - 1])
        noise_pred = torch.mul(score(x, a, s), -s, out=buffers["eps"][t % 2])
        # DDIM_t(x) + c (eps_prev - eps) = (a_prev / a) x + (s_prev - a_prev s / a - c) eps + c eps_prev
        c = li_icml2024_ode_weight(abar[t - 1], abar[t], abar[t + 1]) if prev else 0.0
        out = torch.mul(x, a_prev / a, out=buffers["out"][t % 2]).add_(noise_pred, alpha=s_prev - a_prev * s / a - c)
        if prev:
            out.add_(prev["noise_pred"], alpha=c)
        prev["noise_pred"] = noise_pred
        return out

    return run_chain(lambda t, x, _generator: step(t, x), schedule, y, None, t_stop=t_stop, callback=callback, return_trajectory=return_trajectory, progress=progress)


@functools.lru_cache(maxsize=None)
def heroism_weights(K: int) -> np.ndarray:
    r"""Integrated Lagrange weights on K equispaced nodes :math:`u_i = i/(K-1)` of [0, 1].

    ``W[i, j]`` :math:`= \int_0^{u_i}\psi_j(u)\,du`, :math:`\psi_j` the Lagrange basis
    polynomial of node j, integrated exactly (numpy polynomials). A step of length
    :math:`\Delta\tau` has :math:`\gamma_j(\tau_{t,i}) = \Delta\tau\, W[i, j]`.
    """
    check_positive_int(K, "K", 2)
    u = np.linspace(0.0, 1.0, K)
    W = np.empty((K, K))
    for j in range(K):
        others = np.delete(u, j)
        basis = np.polynomial.Polynomial.fromroots(others) / np.prod(u[j] - others)
        integral = basis.integ()
        W[:, j] = integral(u) - integral(0.0)
    return W


def heroism(score: ScoreFn, schedule: DiscreteVP, y, K: int = 3, N: int | None = None, *, t_stop=0, callback=None, return_trajectory=False, progress=False):
    r"""HEROISM (Li, Zhou, Wei & Chen 2025): a K-th order training-free ODE sampler.

    Per step t, with :math:`\tau = 1-\bar\alpha`: K equispaced nodes :math:`\tau_{t,i}` from
    :math:`\tau_{t,0} = 1-\bar\alpha_t` down to :math:`\tau_{t,K-1} = 1-\bar\alpha_{t-1}`,
    the Lagrange basis :math:`\psi_j` on them and :math:`\gamma_j(\tau') = \int_{\tau'}^{\tau_{t,0}}\psi_j`.
    All nodes start at :math:`Y_t`; each of N rounds of successive refinement sets

    .. math::
        \frac{x^{(n+1)}_{\tau_{t,i}}}{\sqrt{1-\tau_{t,i}}} = \frac{Y_t}{\sqrt{1-\tau_{t,0}}}
        + \frac12\sum_{j} \gamma_j(\tau_{t,i})\,(1-\tau_{t,j})^{-3/2}\, s_{\tau_{t,j}}\big(x^{(n)}_{\tau_{t,j}}\big),

    and :math:`Y_{t-1} = x^{(N)}_{\tau_{t,K-1}}`: T K N score evaluations (every node is
    evaluated in every round, as published). This integrates
    :math:`d(x/\sqrt{1-\tau}) = -\tfrac12(1-\tau)^{-3/2}s_\tau(x)\,d\tau` with the integrand
    interpolated at degree K-1; the printed eq. 14 omits the 1/2 that eq. 10 implies
    (docs/papers.md). Each round gains one order in the step, so the default ``N = K`` makes the
    local error :math:`O(\Delta\tau^{K+1})`; the paper's theory takes :math:`N \sim \log T`.
    The theorem's rate is :math:`TV \lesssim d^2 (d \log^2 T / T)^K \log^2 T`.

    The nodes live in two sets of K - 1 buffers, used in turn by successive steps (no allocation
    per step beyond the score's own): ``callback`` sees an iterate whose storage is reused two steps
    later, so a callback that keeps it must copy it.
    """
    K = check_positive_int(K, "K", 2)
    N = K if N is None else check_positive_int(N, "N")
    W = heroism_weights(K)
    abar = schedule.abar.tolist()

    buffers = []  # two sets of K - 1 node buffers, used in turn by successive steps

    def step(t, x):
        if not buffers:
            buffers.extend([torch.empty_like(x) for _ in range(K - 1)] for _ in range(2))
        # nodes in abar = 1 - tau (computing 1 - tau would round abar_T ~ 1e-17 to 0)
        abars = [abar[t] + (abar[t - 1] - abar[t]) * i / (K - 1) for i in range(K)]
        nodes = [x] * K
        for _ in range(N):
            g = [score(nodes[j], math.sqrt(ab), math.sqrt(1 - ab)) for j, ab in enumerate(abars)]  # all read before any node is rewritten
            # x_i = sqrt(abar_i) (x / sqrt(abar_t) + sum_j (abar_{t-1} - abar_t) W_ij (1/2) abar_j^(-3/2) s_j), in K + 1 passes
            nodes = [x] + [torch.mul(x, math.sqrt(abars[i] / abar[t]), out=buffers[t % 2][i - 1]) for i in range(1, K)]
            for i in range(1, K):
                for j in range(K):
                    nodes[i].add_(g[j], alpha=math.sqrt(abars[i]) * (abar[t - 1] - abar[t]) * float(W[i, j]) * 0.5 * abars[j] ** -1.5)
        return nodes[-1]

    return run_chain(lambda t, x, _generator: step(t, x), schedule, y, None, t_stop=t_stop, callback=callback, return_trajectory=return_trajectory, progress=progress)


def on_vp_chain(solver):
    r"""An EDM-variable ODE solver run on the discrete chain's own levels.

    ``on_vp_chain(ddim)(score, schedule, x, t_stop=0)`` maps :math:`x = X_T` to
    :math:`y = x/\sqrt{\bar\alpha_T}`, runs ``solver`` over :math:`\lambda_T, \dots, \lambda_{t_{stop}}`
    with the denoiser :math:`D(y, \lambda) = (x + \sigma^2 s(x, \alpha, \sigma))/\alpha` evaluated on
    the VP channel :math:`(\alpha, \sigma) = (1, \lambda)/\sqrt{1+\lambda^2}`, :math:`x = \alpha y`, and
    returns :math:`\sqrt{\bar\alpha_{t_{stop}}}\, y`. DDIM on these levels is the usual DDIM step
    of the chain. ``progress`` is accepted for the common signature; the EDM solvers show no bar.
    """

    @functools.wraps(solver)
    def chain_solver(score: ScoreFn, schedule: DiscreteVP, y, *, t_stop=0, callback=None, return_trajectory=False, progress=False):
        check_chain_inputs(schedule, y, t_stop)
        abar = schedule.abar
        lambdas = torch.sqrt((1 - abar) / abar)[t_stop:].flip(0)

        buffer = []

        def denoiser(yy, _alpha, lam):
            lam = float(lam)
            a = 1 / math.sqrt(1 + lam * lam)
            if not buffer or buffer[0].shape != yy.shape or buffer[0].dtype != yy.dtype:
                buffer[:] = [torch.empty_like(yy)]
            x = torch.mul(yy, a, out=buffer[0])
            # (x + sigma^2 s(x)) / alpha = yy + (sigma^2 / alpha) s(x), written into x: one buffer
            # for every call (the solvers read D before their next call; safe even if the score
            # returns x itself)
            return torch.add(yy, score(x, a, lam * a), alpha=(lam * a) ** 2 / a, out=x)

        def chain_callback(i, lam, y):
            if callback is not None:
                callback(t=schedule.T - i, y=y * math.sqrt(float(abar[schedule.T - i - 1])))

        out = solver(denoiser, lambdas, y / math.sqrt(float(abar[-1])), callback=chain_callback, return_trajectory=return_trajectory)
        scale = torch.sqrt(abar[t_stop:].flip(0)).to(y)
        if return_trajectory:
            traj = out[1] * scale[:, None, None]
            traj[0] = y  # the start itself, not y / sqrt(abar_T) * sqrt(abar_T) rounded
            return out[0] * scale[-1], traj
        return out * scale[-1]

    chain_solver.__doc__ = f"{solver.__name__} on the discrete VP chain's levels (see :func:`on_vp_chain`)."
    return chain_solver
