r"""Probability-flow ODE solvers in EDM variables.

Any channel :math:`x = \alpha X_0 + \sigma Z` becomes :math:`y = x/\alpha = X_0 + \lambda Z`
with :math:`\lambda = \sigma/\alpha` (:mod:`cmtheory.processes`), and the probability-flow ODE is

.. math:: \frac{dy}{d\lambda} = \frac{y - D(y, \lambda)}{\lambda}, \qquad D(y,\lambda) = E[X_0 \mid y].

The solvers share k-diffusion's signature, ``solver(denoiser, lambdas, y, *, callback=None,
return_trajectory=False)``, where ``denoiser(y, alpha, sigma)`` is a target's denoiser (called
with alpha = 1, sigma = lambda) and ``lambdas`` a decreasing grid whose last entry may be 0.
Convert back with :math:`x = \alpha y`.

The iterates are written into two buffers used in turn, and each solver's intermediate tensors
into buffers kept across steps: a fresh (n, d) tensor whose pages must be faulted in costs several
times an in-place pass on a CPU, so a step allocates nothing of its own. The input ``y`` is never modified;
``callback(i=..., lam=..., y=...)`` sees the current iterate, whose storage is reused two steps
later (copy it to keep it); a denoiser's output is read before the next denoiser call and never
written to.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.integrate
import torch

from cmtheory._checks import check_noise_levels, check_points, check_positive, check_positive_int

__all__ = ["karras_grid", "log_grid", "ddim_step", "ddim", "heun_step", "heun", "dpm_solver_2", "dpm_solver_pp_2m", "reference_flow_map"]


def _check_range(lam_max: float, lam_min: float, positive_min: bool) -> None:
    """lam_max > lam_min, both finite; lam_min > 0 (``positive_min``) or >= 0."""
    for name, v in (("lam_max", lam_max), ("lam_min", lam_min)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{name} must be a finite number, got {v!r}")
    if lam_min < 0 or (positive_min and lam_min == 0):
        raise ValueError(f"lam_min must be {'> 0' if positive_min else '>= 0'}, got {lam_min!r}")
    if not lam_max > lam_min:
        raise ValueError(f"lam_max must exceed lam_min (the grid runs from the largest noise level down), got lam_max={lam_max!r}, lam_min={lam_min!r}")


def karras_grid(lam_max: float, lam_min: float, N: int, rho: float = 7.0, append_zero: bool = False) -> torch.Tensor:
    r"""EDM grid :math:`\lambda_i = (\lambda_{max}^{1/\rho} + \tfrac{i}{N}(\lambda_{min}^{1/\rho} - \lambda_{max}^{1/\rho}))^\rho`, i = 0..N."""
    check_positive_int(N, "N")
    _check_range(lam_max, lam_min, positive_min=False)
    check_positive(rho, "rho")
    i = torch.arange(N + 1, dtype=torch.float64) / N
    try:
        lam = (lam_max ** (1 / rho) + i * (lam_min ** (1 / rho) - lam_max ** (1 / rho))) ** rho
    except OverflowError:
        raise ValueError(f"rho={rho!r} overflows lam ** (1/rho) for lam_max={lam_max!r}: use a rho near 7 (EDM's)") from None
    if not bool(torch.isfinite(lam).all() and (lam[1:] < lam[:-1]).all()):
        raise ValueError(f"lam_max={lam_max!r}, lam_min={lam_min!r}, N={N}, rho={rho!r} give levels that float64 cannot tell apart (they underflow or round together): use a smaller rho or N")
    return torch.cat([lam, torch.zeros(1, dtype=torch.float64)]) if append_zero else lam


def log_grid(lam_max: float, lam_min: float, N: int) -> torch.Tensor:
    r"""Log-uniform grid of N steps from :math:`\lambda_{max}` down to :math:`\lambda_{min}` > 0."""
    check_positive_int(N, "N")
    _check_range(lam_max, lam_min, positive_min=True)
    lam = torch.exp(torch.linspace(math.log(lam_max), math.log(lam_min), N + 1, dtype=torch.float64))
    if not bool((lam[1:] < lam[:-1]).all()):
        raise ValueError(f"lam_max={lam_max!r}, lam_min={lam_min!r}, N={N} give levels that float64 cannot tell apart: use fewer steps")
    return lam


def _loop(update, denoiser, lambdas, y, callback, return_trajectory):
    """Run ``y <- update(denoiser, y, lam_i, lam_{i+1}, state, out)`` over the grid, ``out`` one of
    two buffers in turn (never the buffer holding ``y``); ``state`` keeps a solver's own buffers."""
    lam = check_noise_levels(lambdas)
    check_points(y, y.shape[1] if y.ndim == 2 else -1, "y")
    traj = [y.clone()] if return_trajectory else None
    state = {}
    iterates = (torch.empty_like(y), torch.empty_like(y))
    for i in range(len(lam) - 1):
        y = update(denoiser, y, lam[i], lam[i + 1], state, out=iterates[i % 2])
        if traj is not None:
            traj.append(y.clone())
        if callback is not None:
            callback(i=i, lam=lam[i + 1], y=y)
    return (y, torch.stack(traj)) if return_trajectory else y


def _d(y, lam, denoised, out=None):
    """dy/dlambda = (y - D) / lambda (k-diffusion's to_d), into ``out`` when given."""
    return torch.sub(y, denoised, out=out).div_(lam)


def _scratch(state: dict, key: str, like: torch.Tensor) -> torch.Tensor:
    """A buffer shaped like ``like`` kept in ``state`` across steps."""
    buf = state.get(key)
    if buf is None or buf.shape != like.shape or buf.dtype != like.dtype or buf.device != like.device:
        buf = state[key] = torch.empty_like(like)
    return buf


def ddim_step(denoiser, y, lam, lam_next, state=None, out=None):
    r"""DDIM step (first-order exponential integrator): :math:`y' = D + \frac{\lambda'}{\lambda}(y - D)`.

    ``lam`` and ``lam_next`` are floats, or tensors of shape (n,) with one level per row of ``y``.
    The result is a new tensor, or is written into ``out``."""
    D = denoiser(y, 1.0, lam)
    ratio = lam_next / lam
    if isinstance(ratio, torch.Tensor) and ratio.ndim == 1:
        return torch.lerp(D, y, ratio[:, None].to(y.dtype), out=out)
    return torch.lerp(D, y, float(ratio), out=out)  # D + ratio (y - D) in one pass


def ddim(denoiser, lambdas, y, *, callback=None, return_trajectory=False):
    r"""DDIM (Song et al. 2021), exact when D is constant over the step; order 1."""
    return _loop(ddim_step, denoiser, lambdas, y, callback, return_trajectory)


def heun_step(denoiser, y, lam, lam_next, state=None, out=None):
    r"""Heun step (Karras et al. 2022, Algorithm 1 without churn), Euler where :math:`\lambda' = 0`:

    .. math:: d = \frac{y - D(y, \lambda)}{\lambda},\quad \tilde y = y + (\lambda' - \lambda)\, d,\quad
              y' = y + \frac{\lambda' - \lambda}{2}\Big(d + \frac{\tilde y - D(\tilde y, \lambda')}{\lambda'}\Big).

    ``lam`` and ``lam_next`` are floats, or tensors of shape (n,) with one level per row of ``y``
    (the per-row form allocates; the float form writes into ``out`` and needs no other buffer).
    Order 2; two denoiser calls where :math:`\lambda' > 0`."""
    if isinstance(lam, torch.Tensor) and lam.ndim == 1:
        h = (lam_next - lam)[:, None].to(y.dtype)
        d = _d(y, lam[:, None].to(y.dtype), denoiser(y, 1.0, lam))
        y_euler = y + h * d
        positive = lam_next > 0
        if not bool(positive.any()):
            return y_euler
        safe = torch.where(positive, lam_next, lam)  # rows with lam_next = 0 keep the Euler step
        d_next = _d(y_euler, safe[:, None].to(y.dtype), denoiser(y_euler, 1.0, safe))
        return torch.where(positive[:, None], y + 0.5 * h * (d + d_next), y_euler)
    # The float form in three passes besides the denoiser calls, with h = lam' - lam:
    # y~ = y + h d = lerp(y, D, -h / lam); y' = y + h (d + d') / 2 = (y + y~) / 2 + h (y~ - D') / (2 lam')
    #    = lerp(lerp(y~, D', -h / lam'), y, 1/2), since h d = y~ - y. ``state`` is unused.
    out = torch.empty_like(y) if out is None else out
    h = lam_next - lam
    y_euler = torch.lerp(y, denoiser(y, 1.0, lam), -h / lam, out=out)
    if lam_next == 0:
        return y_euler
    return torch.lerp(y_euler, denoiser(y_euler, 1.0, lam_next), -h / lam_next, out=out).lerp_(y, 0.5)


def heun(denoiser, lambdas, y, *, callback=None, return_trajectory=False):
    r"""Heun's second-order method (Karras et al. 2022, Algorithm 1 without churn); Euler on the
    last step to :math:`\lambda = 0`. Order 2."""
    return _loop(heun_step, denoiser, lambdas, y, callback, return_trajectory)


def _dpm2_update(denoiser, y, lam, lam_next, state, out):
    # y + (lam' - lam) d = lerp(y, D, (lam - lam') / lam) in one pass, d = (y - D) / lam
    if lam_next == 0:
        return torch.lerp(y, denoiser(y, 1.0, lam), 1.0, out=out)
    lam_mid = math.exp(0.5 * (math.log(lam) + math.log(lam_next)))
    y_mid = torch.lerp(y, denoiser(y, 1.0, lam), (lam - lam_mid) / lam, out=out)
    d_mid = _d(y_mid, lam_mid, denoiser(y_mid, 1.0, lam_mid), out=_scratch(state, "d", y))
    return torch.add(y, d_mid, alpha=lam_next - lam, out=out)


def dpm_solver_2(denoiser, lambdas, y, *, callback=None, return_trajectory=False):
    r"""DPM-Solver-2 (Lu et al. 2022) in EDM variables: the noise-prediction exponential
    integrator with the midpoint in :math:`\log\lambda` (k-diffusion's ``sample_dpm_2``). Order 2."""
    return _loop(_dpm2_update, denoiser, lambdas, y, callback, return_trajectory)


def _dpmpp_2m_update(denoiser, y, lam, lam_next, state, out):
    D = denoiser(y, 1.0, lam)
    if "lam" in state and lam_next > 0:
        h = math.log(lam) - math.log(lam_next)
        r = (math.log(state["lam"]) - math.log(lam)) / h
        torch.lerp(state["D"], D, 1 + 1 / (2 * r), out=out)  # (1 + 1/(2r)) D - (1/(2r)) D_prev
        out.lerp_(y, lam_next / lam)
    else:
        torch.lerp(D, y, lam_next / lam, out=out)
    _scratch(state, "D", y).copy_(D)  # the denoiser's output is not ours to keep
    state["lam"] = lam
    return out


def dpm_solver_pp_2m(denoiser, lambdas, y, *, callback=None, return_trajectory=False):
    r"""DPM-Solver++(2M) (Lu et al. 2022b): multistep data prediction,
    :math:`y' = \frac{\lambda'}{\lambda}y + (1 - \frac{\lambda'}{\lambda})\big((1+\tfrac{1}{2r})D_i - \tfrac{1}{2r}D_{i-1}\big)`,
    :math:`r = h_{i-1}/h_i` in log-lambda steps. One denoiser call per step. Order 2."""
    return _loop(_dpmpp_2m_update, denoiser, lambdas, y, callback, return_trajectory)


def reference_flow_map(denoiser, y, lam_from: float, lam_to: float, rtol: float = 1e-11, atol: float = 1e-11):
    r"""High-accuracy flow map :math:`\Phi_{\lambda_{from}\to\lambda_{to}}(y)` of the probability-flow ODE.

    Adaptive DOP853 (scipy) in float64 on :math:`u = \log\lambda`, where
    :math:`dy/du = y - D(y, e^u)`; the whole batch is one system, so the step control is
    set by the hardest sample. Accuracy is about ``rtol`` (checked by tolerance halving in
    the tests). For ``lam_to = 0`` it integrates to :math:`\lambda_\epsilon = 10^{-7}\min(1, \lambda_{from})`
    and returns :math:`D(y, \lambda_\epsilon)`, whose distance to the limit is
    :math:`O(\lambda_\epsilon^2)` for targets with a density.
    """
    if not (lam_from > lam_to >= 0):
        raise ValueError(f"need lam_from > lam_to >= 0, got {lam_from} -> {lam_to}")
    shape, device, dtype = y.shape, y.device, y.dtype
    stop = lam_to if lam_to > 0 else 1e-7 * min(1.0, lam_from)

    def rhs(u, flat):
        yy = torch.from_numpy(flat).reshape(shape).to(device)
        return (yy - denoiser(yy, 1.0, math.exp(u))).reshape(-1).cpu().numpy()

    sol = scipy.integrate.solve_ivp(
        rhs, (math.log(lam_from), math.log(stop)), y.detach().double().reshape(-1).cpu().numpy(), method="DOP853", rtol=rtol, atol=atol
    )
    if not sol.success:
        raise RuntimeError(f"reference solver failed: {sol.message}")
    out = torch.from_numpy(np.ascontiguousarray(sol.y[:, -1])).reshape(shape).to(device)
    if lam_to == 0:
        out = denoiser(out, 1.0, stop)
    return out.to(dtype)
