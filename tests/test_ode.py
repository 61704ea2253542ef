"""Probability-flow ODE solvers: the reference solver against a closed-form flow, and the
orders of DDIM (1), Heun, DPM-Solver-2 and DPM-Solver++(2M) (2) against the reference."""

import math

import numpy as np
import pytest
import torch

from cmtheory.samplers.ode import ddim, dpm_solver_2, dpm_solver_pp_2m, heun, heun_step, karras_grid, log_grid, reference_flow_map
from cmtheory.samplers.scores import CountingScore
from cmtheory.targets import GaussianMixture

GMM = GaussianMixture([0.3, 0.7], [[-1.0, 0.5], [1.0, -0.5]], [[0.3, 0.2], [0.2, 0.4]])


def test_reference_solver_matches_closed_form_gaussian_flow():
    """For N(mu, v) in 1-D the flow is y(lam) = mu + (y0 - mu) sqrt((v + lam^2)/(v + lam0^2)).
    Tolerance 1e-9: the solver runs at rtol = atol = 1e-11."""
    g = GaussianMixture([1.0], [[0.7]], [0.4])
    y0 = torch.linspace(-30, 30, 11, dtype=torch.float64)[:, None]
    for lam_to in (0.5, 0.01, 0.0):
        out = reference_flow_map(g.denoiser, y0, 20.0, lam_to)
        exact = 0.7 + (y0 - 0.7) * math.sqrt((0.4 + lam_to**2) / (0.4 + 400.0))
        torch.testing.assert_close(out, exact, rtol=1e-9, atol=1e-9)


def test_reference_solver_is_converged():
    y0 = 5 * torch.randn(20, 2, dtype=torch.float64)
    a = reference_flow_map(GMM.denoiser, y0, 5.0, 0.05)
    b = reference_flow_map(GMM.denoiser, y0, 5.0, 0.05, rtol=1e-13, atol=1e-13)
    assert float((a - b).abs().max()) < 1e-8


@pytest.mark.parametrize(
    "solver,order", [(ddim, 1), (heun, 2), (dpm_solver_2, 2), (dpm_solver_pp_2m, 2)], ids=["ddim", "heun", "dpm2", "dpmpp2m"]
)
def test_flow_map_order(solver, order):
    """Max flow-map error over 64 points from lambda = 5 to 0.05 on log grids of N = 16..128
    steps; fitted log-log slope within 0.3 of -order."""
    y0 = 5 * torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref = reference_flow_map(GMM.denoiser, y0, 5.0, 0.05)
    Ns = [16, 32, 64, 128]
    errs = [float((solver(GMM.denoiser, log_grid(5.0, 0.05, N), y0) - ref).norm(dim=1).max()) for N in Ns]
    slope = float(np.polyfit(np.log(Ns), np.log(errs), 1)[0])
    assert abs(slope + order) < 0.3, (slope, errs)


def test_denoiser_calls_per_step():
    y0 = torch.randn(5, 2, dtype=torch.float64)
    lam = karras_grid(10.0, 0.01, 12, append_zero=True)  # 13 steps, the last to 0
    for solver, calls in [(ddim, 13), (dpm_solver_pp_2m, 13), (heun, 2 * 13 - 1), (dpm_solver_2, 2 * 13 - 1)]:
        c = CountingScore(GMM.denoiser)
        out = solver(c, lam, y0)
        assert c.calls == calls and torch.isfinite(out).all()


def test_heun_step_with_per_row_levels_is_the_scalar_step_row_by_row():
    """The per-row form (CD's teacher) against the buffered scalar form, row by row, a row stepping
    to 0 (Euler) included. Tolerance 1e-13: the same arithmetic in another order, float64."""
    y = 3 * torch.randn(6, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    lam = torch.tensor([2.0, 2.0, 5.0, 0.3, 1.0, 9.0], dtype=torch.float64)
    lam_next = torch.tensor([0.7, 0.7, 1.0, 0.0, 0.99, 3.0], dtype=torch.float64)
    out = heun_step(GMM.denoiser, y, lam, lam_next)
    for k in range(6):
        one = heun_step(GMM.denoiser, y[k : k + 1], float(lam[k]), float(lam_next[k]), state={}, out=torch.empty(1, 2, dtype=torch.float64))
        torch.testing.assert_close(out[k : k + 1], one, rtol=1e-13, atol=1e-13)
    euler = y[3:4] - 0.3 * (y[3:4] - GMM.denoiser(y[3:4], 1.0, 0.3)) / 0.3
    torch.testing.assert_close(out[3:4], euler, rtol=1e-13, atol=1e-13)


def test_trajectory_and_grid_validation():
    y0 = torch.randn(3, 2, dtype=torch.float64)
    out, traj = ddim(GMM.denoiser, log_grid(5.0, 0.1, 10), y0, return_trajectory=True)
    assert traj.shape == (11, 3, 2) and torch.equal(traj[-1], out)
    with pytest.raises(ValueError, match="strictly decreasing"):
        ddim(GMM.denoiser, [1.0, 2.0], y0)
    with pytest.raises(ValueError, match="lam_from > lam_to"):
        reference_flow_map(GMM.denoiser, y0, 1.0, 2.0)
