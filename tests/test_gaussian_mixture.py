"""GaussianMixture: closed-form moments, Monte Carlo posterior mean, validation, fast paths."""

import math
import shutil

import pytest
import torch

from cmtheory.targets import GaussianMixture


def test_fast_paths_agree_with_full_covariance():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(3, 4, generator=g, dtype=torch.float64)
    diag = torch.rand(3, 4, generator=g, dtype=torch.float64) + 0.1
    iso = torch.rand(3, generator=g, dtype=torch.float64) + 0.1
    w = [0.2, 0.3, 0.5]
    x = torch.randn(20, 4, generator=g, dtype=torch.float64)
    v = torch.randn(20, 4, generator=g, dtype=torch.float64)
    for fast, full in [
        (GaussianMixture(w, mu, diag), GaussianMixture(w, mu, torch.diag_embed(diag))),
        (GaussianMixture(w, mu, iso), GaussianMixture(w, mu, iso[:, None, None] * torch.eye(4))),
    ]:
        # a scalar channel (the isotropic kernel's folded matmuls) and channels of one value per row
        for a, s in [(0.7, 0.5), (torch.linspace(0.5, 1.0, 20, dtype=torch.float64), 0.5), (0.7, torch.linspace(0.1, 2.0, 20, dtype=torch.float64))]:
            for m in ("log_prob", "score", "denoiser"):
                torch.testing.assert_close(getattr(fast, m)(x, a, s), getattr(full, m)(x, a, s))
            torch.testing.assert_close(fast.hvp(x, v, a, s), full.hvp(x, v, a, s))


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None, reason="torch.compile's CPU backend needs a C++ compiler")
@pytest.mark.parametrize("kind", ["isotropic", "diagonal"])
def test_compiled_score_equals_eager(kind):
    """torch.compile (inductor, which fuses the elementwise passes) against the eager score, float32:
    the fused kernels regroup sums, so they agree to float32 round-off, 1e-5 relative to the
    largest score entry (float32's epsilon is 1.2e-7; the score cancels terms of size |x| / v)."""
    g = torch.Generator().manual_seed(0)
    covs = torch.rand(8, generator=g) + 0.5 if kind == "isotropic" else torch.rand(8, 16, generator=g) + 0.5
    gmm = GaussianMixture(torch.full((8,), 1 / 8), 2 * torch.randn(8, 16, generator=g), covs)
    x = 2 * torch.randn(512, 16, generator=g)
    eager = gmm.score(x, 0.8, 0.6)
    compiled = torch.compile(gmm.score, dynamic=False)(x, 0.8, 0.6)
    torch.testing.assert_close(compiled, eager, rtol=0, atol=1e-5 * float(eager.abs().max()))


def test_log_prob_of_single_gaussian_is_closed_form():
    cov = torch.tensor([[1.0, 0.3], [0.3, 0.5]], dtype=torch.float64)
    mu = torch.tensor([0.5, -1.0], dtype=torch.float64)
    gmm = GaussianMixture([1.0], mu[None], cov[None])
    x = torch.randn(10, 2, dtype=torch.float64)
    a, s = 0.6, 0.8
    ref = torch.distributions.MultivariateNormal(a * mu, a**2 * cov + s**2 * torch.eye(2)).log_prob(x)
    torch.testing.assert_close(gmm.log_prob(x, a, s), ref)


@pytest.mark.parametrize("kind", ["isotropic", "diagonal", "full"])
def test_sample_moments_match_closed_form(kind):
    mu = torch.tensor([[-2.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    covs = {
        "isotropic": [0.3, 0.8],
        "diagonal": [[0.3, 0.5], [0.8, 0.2]],
        "full": [[[0.3, 0.1], [0.1, 0.5]], [[0.8, -0.3], [-0.3, 0.4]]],
    }[kind]
    gmm = GaussianMixture([0.4, 0.6], mu, covs)
    n = 200_000
    x = gmm.sample(n, torch.Generator().manual_seed(1))
    m, C = gmm.mean(), gmm.covariance()
    # 5 standard errors of the sample mean (per coordinate) and of the sample covariance
    se_mean = torch.sqrt(torch.diagonal(C) / n)
    assert ((x.mean(0) - m).abs() < 5 * se_mean).all()
    se_cov = torch.sqrt((torch.diagonal(C)[:, None] * torch.diagonal(C)[None, :] + C**2) / n) * 2
    assert ((torch.cov(x.T) - C).abs() < 5 * se_cov).all()


def test_denoiser_matches_monte_carlo_posterior_mean():
    """E[X0 | x] by self-normalised importance sampling from the prior, with a 5-sigma CI."""
    gmm = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.5]], [0.2, 0.4])
    alpha, sigma = 0.8, 0.6
    x = torch.tensor([[0.3, -0.2], [-1.0, 0.4]], dtype=torch.float64)
    x0 = gmm.sample(400_000, torch.Generator().manual_seed(2))
    for i in range(x.shape[0]):
        logw = -((x[i] - alpha * x0) ** 2).sum(1) / (2 * sigma**2)
        w = torch.softmax(logw, 0)
        est = (w[:, None] * x0).sum(0)
        ess = 1 / (w**2).sum()
        post_var = (w[:, None] * (x0 - est) ** 2).sum(0)
        se = torch.sqrt(post_var / ess)
        exact = gmm.denoiser(x[i : i + 1], alpha, sigma)[0]
        assert ((est - exact).abs() < 5 * se).all(), (est, exact, se)


def test_chunking_gives_same_result_as_one_pass(monkeypatch):
    import cmtheory.targets.gaussian_mixture as mod

    gmm = GaussianMixture([0.5, 0.5], [[0.0, 0.0], [1.0, 1.0]], [[[1.0, 0.2], [0.2, 1.0]], [[0.5, 0.0], [0.0, 0.5]]])
    x = torch.randn(100, 2, dtype=torch.float64)
    a = torch.rand(100, dtype=torch.float64) + 0.5
    ref = gmm.score(x, a, 0.5)
    monkeypatch.setattr(mod, "_CHUNK_ELEMENTS", 12)
    torch.testing.assert_close(gmm.score(x, a, 0.5), ref)


@pytest.mark.parametrize(
    "weights,means,covs,match",
    [
        ([0.5, -0.5, 1.0], [[0.0]] * 3, [1.0] * 3, "weights must be finite and non-negative"),
        ([0.5, 0.6], [[0.0], [1.0]], [1.0, 1.0], "weights must sum to 1"),
        ([[0.5, 0.5]], [[0.0], [1.0]], [1.0, 1.0], "weights must be a non-empty 1-D"),
        ([0.5, 0.5], [0.0, 1.0], [1.0, 1.0], "means must have shape"),
        ([0.5, 0.5], [[0.0], [1.0]], [1.0, 0.0], "must be > 0"),
        ([0.5, 0.5], [[0.0], [1.0]], [1.0, 1.0, 1.0], "covs must have shape"),
        ([1.0], [[0.0, 0.0]], [[[1.0, 0.5], [0.0, 1.0]]], "not symmetric"),
        ([1.0], [[0.0, 0.0]], [[[1.0, 2.0], [2.0, 1.0]]], "eigenvalue <= 0"),
        ([1.0], [[math.nan, 0.0]], [1.0], "means contains NaN"),
    ],
)
def test_invalid_parameters_raise(weights, means, covs, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixture(weights, means, covs)


def test_ring_mixture_moments():
    from cmtheory.targets import ring_mixture

    t = ring_mixture(8, 2.0, 0.04)
    torch.testing.assert_close(t.mean(), torch.zeros(2, dtype=torch.float64), atol=1e-14, rtol=0)
    torch.testing.assert_close(t.covariance(), (2.0**2 / 2 + 0.04) * torch.eye(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="radius"):
        ring_mixture(8, -1.0)


def test_responsibilities_form_no_subnormal_numbers_and_match_softmax():
    """Far-apart components in float32 push most responsibilities below the smallest normal float;
    they come out as exact zeros (never subnormal), rows sum to 1, and the rest equals the float64
    softmax to float32 round-off (1e-6 absolute)."""
    g = torch.Generator().manual_seed(0)
    gmm = GaussianMixture(torch.full((16,), 1 / 16), 6 * torch.randn(16, 8, generator=g, dtype=torch.float64), torch.full((16,), 0.3))
    x = gmm.sample(2000, g).float()
    r = gmm.responsibilities(x, 1.0, 0.1)
    tiny = torch.finfo(torch.float32).tiny
    assert ((r == 0) | (r >= tiny)).all()
    assert (r == 0).float().mean() > 0.5
    ref = gmm.responsibilities(x.double(), 1.0, 0.1)
    assert (r.double() - ref).abs().max() < 1e-6
    assert torch.allclose(r.sum(1), torch.ones(2000), atol=1e-6)
