"""The contract every target keeps (cmtheory.targets.base): exact, mutually consistent
score, log-density, denoiser and Hessian-vector product, on any dtype, finite at extremes.

Tolerances: float64 comparisons between two evaluations of one closed form use 1e-9
relative (the Bessel functions of the sphere are accurate to ~1e-10); float32 against
float64 uses 1e-3 relative (single precision, a few cancelling terms).
"""

import pytest
import torch

from conftest import CHANNELS


def _points(target, n=16, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(n, target.d, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("alpha,sigma", CHANNELS)
def test_score_is_gradient_of_log_prob(target, alpha, sigma):
    x = _points(target).requires_grad_(True)
    (grad,) = torch.autograd.grad(target.log_prob(x, alpha, sigma).sum(), x)
    torch.testing.assert_close(target.score(x.detach(), alpha, sigma), grad, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("alpha,sigma", CHANNELS)
def test_hvp_matches_autograd(target, alpha, sigma):
    x = _points(target).requires_grad_(True)
    v = _points(target, seed=1)
    (grad,) = torch.autograd.grad(target.log_prob(x, alpha, sigma).sum(), x, create_graph=True)
    (hv,) = torch.autograd.grad((grad * v).sum(), x)
    torch.testing.assert_close(target.hvp(x.detach(), v, alpha, sigma), hv, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("alpha,sigma", CHANNELS)
def test_denoiser_is_tweedie(target, alpha, sigma):
    x = _points(target)
    tweedie = (x + sigma**2 * target.score(x, alpha, sigma)) / alpha
    torch.testing.assert_close(target.denoiser(x, alpha, sigma), tweedie, rtol=1e-9, atol=1e-9)


def test_per_sample_channel_matches_scalar_channel(target):
    x = _points(target, n=len(CHANNELS))
    a = torch.tensor([c[0] for c in CHANNELS], dtype=torch.float64)
    s = torch.tensor([c[1] for c in CHANNELS], dtype=torch.float64)
    batched = target.score(x, a, s)
    for i, (alpha, sigma) in enumerate(CHANNELS):
        torch.testing.assert_close(batched[i : i + 1], target.score(x[i : i + 1], alpha, sigma))
    lp = target.log_prob(x, a, s)
    for i, (alpha, sigma) in enumerate(CHANNELS):
        torch.testing.assert_close(lp[i : i + 1], target.log_prob(x[i : i + 1], alpha, sigma))


def test_float32_agrees_with_float64(target):
    x = _points(target)
    for method in ("score", "denoiser", "log_prob"):
        f64 = getattr(target, method)(x, 0.8, 0.6)
        f32 = getattr(target, method)(x.float(), 0.8, 0.6)
        assert f32.dtype == torch.float32
        torch.testing.assert_close(f32.double(), f64, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("scale,sigma", [(1.0, 1e-4), (1e3 / 3**0.5, 0.5), (1e3 / 3**0.5, 1e-4)])
def test_finite_at_extremes(target, scale, sigma):
    x = _points(target, scale=scale)
    v = _points(target, seed=3)
    for out in (
        target.score(x, 0.9, sigma),
        target.denoiser(x, 0.9, sigma),
        target.log_prob(x, 0.9, sigma),
        target.hvp(x, v, 0.9, sigma),
    ):
        assert torch.isfinite(out).all()


def test_finite_check_is_exact_where_the_sum_overflows():
    """The finite check sums x first; finite entries whose sum overflows (float32: 2 x 3e38) pass,
    a single NaN or inf among them does not."""
    from cmtheory._checks import check_points

    x = torch.full((4, 2), 3e38, dtype=torch.float32)
    assert not torch.isfinite(x.sum())
    assert check_points(x, 2) is x
    x[3, 1] = float("nan")
    with pytest.raises(ValueError, match="x contains NaN or inf"):
        check_points(x, 2)


def test_rejects_bad_points_and_channel(target):
    x = _points(target)
    with pytest.raises(ValueError, match="x must have shape"):
        target.score(x[:, :-1] if target.d > 1 else torch.zeros(2, 2, dtype=torch.float64), 1.0, 0.5)
    with pytest.raises(ValueError, match="x must have shape"):
        target.score(x[0], 1.0, 0.5)
    bad = x.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        target.score(bad, 1.0, 0.5)
    bad[0, 0] = float("inf")
    with pytest.raises(ValueError, match="NaN or inf"):
        target.log_prob(bad, 1.0, 0.5)
    bad[0, 0] = -float("inf")
    with pytest.raises(ValueError, match="NaN or inf"):
        target.denoiser(bad, 1.0, 0.5)
    bad[0, 0], bad[1, 0] = float("inf"), -float("inf")  # their sum is NaN, not inf: still refused
    with pytest.raises(ValueError, match="NaN or inf"):
        target.score(bad, 1.0, 0.5)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        target.score(x, 0.0, 0.5)
    with pytest.raises(ValueError, match="sigma must be >= 0|sigma must be > 0"):
        target.score(x, 1.0, -0.1)
    with pytest.raises(ValueError, match="alpha must be a scalar or a tensor of shape"):
        target.score(x, torch.ones(x.shape[0] + 1), 0.5)
    with pytest.raises(ValueError, match="v must have"):
        target.hvp(x, x[:1], 1.0, 0.5)


def test_singular_targets_reject_sigma_zero(target):
    x = _points(target)
    if target.singular:
        with pytest.raises(ValueError, match="sigma must be > 0"):
            target.score(x, 1.0, 0.0)
    else:
        assert torch.isfinite(target.score(x, 1.0, 0.0)).all()


def test_sampling_is_reproducible(target):
    a = target.sample(50, torch.Generator().manual_seed(7))
    b = target.sample(50, torch.Generator().manual_seed(7))
    assert a.shape == (50, target.d) and torch.equal(a, b)
