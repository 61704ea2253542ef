"""Deterministic samplers on the VP chain: their weights against independent integrals, their
score counts, and their exact-law orders in T (docs/papers.md section E)."""

import math

import numpy as np
import pytest
import scipy.integrate
import torch

from cmtheory.metrics import tv_grid
from cmtheory.processes import linear_schedule, theory_schedule
from cmtheory.samplers.chain_ode import heroism, heroism_weights, li_icml2024_ode, li_icml2024_ode_weight, on_vp_chain
from cmtheory.laws import gmm_1d_law, uniform_grid
from cmtheory.samplers.exact_laws import sampler_law_1d
from cmtheory.samplers.ode import ddim
from cmtheory.samplers.scores import CountingScore
from cmtheory.targets import GaussianMixture

GMM = GaussianMixture([0.4, 0.6], [[-1.0], [1.0]], [0.25, 0.16])
GMM2 = GaussianMixture([0.3, 0.7], [[-1.0, 0.5], [1.0, -0.5]], [[0.3, 0.2], [0.2, 0.4]])
EDGES = uniform_grid(-7, 7, 2048)


@pytest.mark.parametrize("abars", [(0.999, 0.99, 0.98), (0.5, 0.4, 0.3), (1.0, 0.9999, 0.9997), (2e-3, 1e-3, 5e-4)])
def test_li_icml2024_ode_weight_is_the_integral_of_the_extrapolated_line(abars):
    r"""c_t = -sqrt(abar_{t-1}) / (abar_t - abar_{t+1}) \int_{lam_t}^{lam_{t-1}} (1/(1+lam^2) - abar_t) dlam,
    the integral by adaptive quadrature (relative tolerance 1e-12; compared to 1e-9)."""
    prev, t, nxt = abars
    lam_prev, lam_t = math.sqrt((1 - prev) / prev), math.sqrt((1 - t) / t)
    integral, _ = scipy.integrate.quad(lambda lam: 1 / (1 + lam * lam) - t, lam_t, lam_prev, epsabs=0, epsrel=1e-12)
    expected = -math.sqrt(prev) / (t - nxt) * integral
    assert li_icml2024_ode_weight(prev, t, nxt) == pytest.approx(expected, rel=1e-9, abs=1e-14)


@pytest.mark.parametrize("K", [2, 3, 5])
def test_heroism_weights_integrate_polynomials_exactly(K):
    """W[i, j] integrates the degree-(K-1) interpolant: sum_j W[i, j] u_j^m = u_i^(m+1)/(m+1), m < K."""
    W = heroism_weights(K)
    u = np.linspace(0, 1, K)
    for m in range(K):
        np.testing.assert_allclose(W @ u**m, u ** (m + 1) / (m + 1), atol=1e-13)


def test_score_evaluations_are_counted():
    """One score per step for li_icml2024_ode (the previous one is reused), T K N for heroism."""
    T = 25
    sched = linear_schedule(T)
    y = torch.randn(5, 2, dtype=torch.float64)
    c = CountingScore(GaussianMixture([1.0], [[0.0, 0.0]], [1.0]).score)
    li_icml2024_ode(c, sched, y)
    assert (c.calls, c.rows) == (T, T * 5)
    for K, N in ((2, 2), (3, 3), (3, 5)):
        c.calls = 0
        heroism(c, sched, y, K=K, N=N)
        assert c.calls == T * K * N


def _tvs(name, schedule, Ts):
    out = []
    for T in Ts:
        sched = schedule(int(T))
        out.append(tv_grid(sampler_law_1d(name, GMM, sched, EDGES), gmm_1d_law(GMM, 1.0, 0.0, EDGES)).value)
    return np.array(out)


def _slopes(Ts, v):
    return np.diff(np.log(v)) / np.diff(np.log(Ts))


def test_ddim_is_first_order_on_both_schedules():
    """Exact laws from q_T (pushforward, accurate to ~1e-11, far below TV ~ 1e-3): DDIM's local
    slopes lie within 0.05 of -1 on the linear schedule; on the theory schedule, whose steps are
    c1 log T / T, they lie between -1 and -0.75 (the schedule's log factor)."""
    Ts = np.array([100, 200, 400])
    assert np.all(np.abs(_slopes(Ts, _tvs("ddim", linear_schedule, Ts)) + 1) < 0.05)
    s = _slopes(Ts, _tvs("ddim", theory_schedule, Ts))
    assert np.all((s > -1.0) & (s < -0.75))


def test_heroism_orders():
    """Linear schedule (TV from 4e-3 down to 5e-8, far above the laws' accuracy ~1e-11):
    K = 2 local slopes over T = 200, 400, 800 within 0.25 of -2; K = 3 over T = 100, 200, 400
    below -3 (faster still at these T, -4.9 and -4.4, approaching its order from below; the
    full profile's T = 1600 gives -3.6, paper_checks.md)."""
    Ts = np.array([200, 400, 800])
    k2 = _slopes(Ts, _tvs("heroism_k2", linear_schedule, Ts))
    assert np.all(np.abs(k2 + 2) < 0.25)
    k3 = _slopes(Ts / 2, _tvs("heroism", linear_schedule, Ts // 2))
    assert np.all(k3 < -3.0)


@pytest.mark.parametrize("K,N", [(2, None), (3, None), (4, 2)])
def test_heroism_is_its_written_out_refinement(K, N):
    """The buffered loop against the docstring's refinement written out term by term, with
    tau = 1 - abar: x_i / sqrt(1 - tau_i) = Y_t / sqrt(1 - tau_0) + (1/2) sum_j gamma_j(tau_i)
    (1 - tau_j)^(-3/2) s_j(x_j), gamma_j(tau_i) = (abar_{t-1} - abar_t) W[i, j] (the integrated
    Lagrange weights); float64 round-off (1e-12 over 30 steps); the input untouched."""
    sched = linear_schedule(30)
    abar = sched.abar.tolist()
    y0 = torch.randn(200, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    keep = y0.clone()
    W = heroism_weights(K)
    x = y0
    for t in range(30, 0, -1):
        abars = [abar[t] + (abar[t - 1] - abar[t]) * i / (K - 1) for i in range(K)]
        nodes = [x] * K
        for _ in range(K if N is None else N):
            g = [0.5 * ab**-1.5 * GMM2.score(nodes[j], math.sqrt(ab), math.sqrt(1 - ab)) for j, ab in enumerate(abars)]
            nodes = [x] + [math.sqrt(abars[i]) * (x / math.sqrt(abar[t]) + sum((abar[t - 1] - abar[t]) * float(W[i, j]) * g[j] for j in range(K))) for i in range(1, K)]
        x = nodes[-1]
    torch.testing.assert_close(heroism(GMM2.score, sched, y0, K, N), x, rtol=1e-12, atol=1e-12)
    assert torch.equal(y0, keep)


def test_li_icml2024_ode_is_second_order_except_near_the_data():
    """What the rule truly gives (not forced to the authors' T^-2): on the linear schedule the
    whole chain has local slopes -1.5 +- 0.1, while the law at step T/8 against q_{T/8} has
    slopes -2 +- 0.1: the order is lost in the last steps, where lambda_t ~ sqrt(t)."""
    Ts = np.array([100, 200, 400])
    whole = _slopes(Ts, _tvs("li_icml2024_ode", linear_schedule, Ts))
    assert np.all(np.abs(whole + 1.5) < 0.1)
    stop = []
    for T in Ts:
        sched = linear_schedule(int(T))
        k = int(T) // 8
        law = sampler_law_1d("li_icml2024_ode", GMM, sched, EDGES, t_stop=k)
        stop.append(tv_grid(law, gmm_1d_law(GMM, *sched.channel(k), EDGES)).value)
    assert np.all(np.abs(_slopes(Ts, np.array(stop)) + 2) < 0.1)


def test_on_vp_chain_ddim_is_the_chain_ddim_step():
    """DDIM on the chain's levels equals the textbook step x' = sqrt(abar') x0 + sqrt(1-abar') eps
    (float64 round-off)."""
    sched = linear_schedule(30)
    x = torch.randn(6, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = on_vp_chain(ddim)(GMM.score, sched, x)
    abar = sched.abar.tolist()
    y = x.clone()
    for t in range(30, 0, -1):
        a, s = math.sqrt(abar[t]), math.sqrt(1 - abar[t])
        eps = -s * GMM.score(y, a, s)
        y = math.sqrt(abar[t - 1]) * (y - s * eps) / a + math.sqrt(1 - abar[t - 1]) * eps
    torch.testing.assert_close(out, y, rtol=1e-10, atol=1e-10)


def test_heroism_refuses_bad_orders():
    sched = linear_schedule(25)
    y = torch.zeros(2, 1, dtype=torch.float64)
    with pytest.raises(ValueError, match="K"):
        heroism(GMM.score, sched, y, K=1)
    with pytest.raises(ValueError, match="N"):
        heroism(GMM.score, sched, y, N=0)
