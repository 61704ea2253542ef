r"""Gaussian mixtures: exact noisy log-density, score, denoiser and Hessian-vector product.

Under the channel :math:`x = \alpha X_0 + \sigma Z` a mixture
:math:`\sum_k w_k N(\mu_k, \Sigma_k)` stays a mixture,

.. math:: q(x) = \sum_k w_k N(x;\ \alpha\mu_k,\ C_k), \qquad C_k = \alpha^2\Sigma_k + \sigma^2 I.

With responsibilities :math:`r_k(x) \propto w_k N(x; \alpha\mu_k, C_k)` and component
scores :math:`s_k(x) = -C_k^{-1}(x - \alpha\mu_k)`:

.. math::
    \nabla\log q = \sum_k r_k s_k = s, \qquad
    \nabla^2\log q\, v = -\sum_k r_k C_k^{-1} v + \sum_k r_k s_k (s_k\cdot v) - s (s\cdot v).

Three covariance kinds share these formulas through one small kernel each: isotropic
(:math:`\Sigma_k = c_k I`, everything is two matmuls with the means), diagonal, and full
(eigendecomposition :math:`\Sigma_k = U_k \operatorname{diag}(\lambda_k) U_k^T` done once, so
:math:`C_k^{-1} = U_k \operatorname{diag}(1/(\alpha^2\lambda_k + \sigma^2)) U_k^T` for any channel).
"""

from __future__ import annotations

import math

import torch

from cmtheory._checks import check_positive, check_positive_int
from cmtheory.targets.base import Target, _randn

__all__ = ["GaussianMixture", "ring_mixture"]

_LOG_2PI = math.log(2 * math.pi)
_CHUNK_ELEMENTS = 2**24  # bound on n_chunk * K * (d for full covariances)


def _row_sum(t: torch.Tensor) -> torch.Tensor:
    """sum_k t[n, k] as (n, 1), a matvec with ones: torch's reduction over a short last axis is
    up to 10x slower (16.7 ms against 1.5 ms at n = 1e6, K = 2, float64, one thread)."""
    return t @ t.new_ones(t.shape[1], 1)


def _mm(x: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
    """sum_j x[n, j] M[., k, j] -> (n, K) for M of shape (1, K, d) or (n, K, d)."""
    if M.shape[0] == 1:
        return x @ M[0].T
    return torch.einsum("nj,nkj->nk", x, M)


def _wm(w: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
    """sum_k w[n, k] M[., k, j] -> (n, d) for M of shape (1, K, d) or (n, K, d)."""
    if M.shape[0] == 1:
        return w @ M[0]
    return torch.einsum("nk,nkj->nj", w, M)


class _Isotropic:
    """Sigma_k = c_k I: variances v_k = a^2 c_k + s^2, shape (m, K)."""

    @staticmethod
    def var(p, a, s):
        return a**2 * p["c"] + s**2

    def log_joint(self, p, x, a, s):
        r""":math:`\log w_k + \log N(x; a\mu_k, v_k I) = c_k + x\cdot(a\mu_k)/v_k - |x|^2/(2v_k)` with
        :math:`c_k = \log w_k - \tfrac d2\log(2\pi v_k) - a^2|\mu_k|^2/(2v_k)`: for a scalar channel one
        addmm with the scaled means forms every term but the last, which is added in place (one
        pass over (n, K) where the expanded square took five)."""
        v = self.var(p, a, s)
        c = p["log_w"] - 0.5 * x.shape[1] * (_LOG_2PI + torch.log(v)) - 0.5 * a**2 * p["mu_sq"] / v
        if v.shape[0] == 1:
            lj = torch.addmm(c, x, (a * p["mu"] / v.T).T)
        else:
            lj = c + a * (x @ p["mu"].T) / v
        return lj.addcmul_(torch.linalg.vector_norm(x, dim=1, keepdim=True) ** 2, 0.5 / v, value=-1)

    def wscore(self, p, x, w, a, s):
        v = self.var(p, a, s)
        if v.shape[0] == 1:  # a scalar channel folds a / v_k into the (K, d) means and 1 / v_k into a matvec
            out, wsum = w @ (a * p["mu"] / v.T), w @ (1 / v.T)
        else:
            wv = w / v
            out, wsum = (a * wv) @ p["mu"], _row_sum(wv)
        return out.addcmul_(x, wsum, value=-1)  # one fused pass over (n, d)

    def wprec(self, p, v, w, a, s):
        return v * _row_sum(w / self.var(p, a, s))

    def sdot(self, p, x, v, a, s):
        var, xv = self.var(p, a, s), torch.linalg.vecdot(x, v, dim=1)[:, None]
        if var.shape[0] == 1:  # a scalar channel folds a / v_k into the means: one matmul and one pass over (n, K)
            return (v @ (a * p["mu"] / var.T).T).addcmul_(xv, 1 / var, value=-1)
        return (a * (v @ p["mu"].T) - xv) / var


class _Diagonal:
    """Sigma_k = diag(c_k): precisions P_kj = 1 / (a^2 c_kj + s^2), shape (m, K, d)."""

    @staticmethod
    def prec(p, a, s):
        return 1 / (a[..., None] ** 2 * p["c"] + s[..., None] ** 2)

    def log_joint(self, p, x, a, s):
        P = self.prec(p, a, s)
        muP = p["mu"] * P
        quad = _mm(x * x, P) - 2 * a * _mm(x, muP) + a**2 * (p["mu"] * muP).sum(-1)
        return p["log_w"] - 0.5 * quad - 0.5 * (x.shape[1] * _LOG_2PI - torch.log(P).sum(-1))

    def wscore(self, p, x, w, a, s):
        P = self.prec(p, a, s)
        return a * _wm(w, p["mu"] * P) - x * _wm(w, P)

    def wprec(self, p, v, w, a, s):
        return v * _wm(w, self.prec(p, a, s))

    def sdot(self, p, x, v, a, s):
        P = self.prec(p, a, s)
        return a * _mm(v, p["mu"] * P) - _mm(x * v, P)


class _Full:
    """Sigma_k = U_k diag(lam_k) U_k^T: eigen-coordinates y_k = U_k^T (x - a mu_k), shape (n, K, d)."""

    @staticmethod
    def c(p, a, s):
        return a[..., None] ** 2 * p["lam"] + s[..., None] ** 2

    @staticmethod
    def rotate(p, x):
        """y[n, k, j] = sum_i x[n, i] U[k, i, j], one matmul with the stacked bases."""
        K, d = p["lam"].shape
        return (x @ p["U_rows"]).reshape(x.shape[0], K, d)

    @staticmethod
    def unrotate(p, t):
        """sum_k U_k t[n, k]: one matmul with the stacked transposed bases."""
        return t.reshape(t.shape[0], -1) @ p["U_cols"]

    def y_over_c(self, p, x, a, s):
        y = self.rotate(p, x) - a[..., None] * p["muU"]
        return y, self.c(p, a, s)

    def log_joint(self, p, x, a, s):
        y, c = self.y_over_c(p, x, a, s)
        return p["log_w"] - 0.5 * (y * y / c).sum(-1) - 0.5 * (x.shape[1] * _LOG_2PI + torch.log(c).sum(-1))

    def wscore(self, p, x, w, a, s):
        y, c = self.y_over_c(p, x, a, s)
        return -self.unrotate(p, w[..., None] * (y / c))

    def wprec(self, p, v, w, a, s):
        return self.unrotate(p, w[..., None] * self.rotate(p, v) / self.c(p, a, s))

    def sdot(self, p, x, v, a, s):
        y, c = self.y_over_c(p, x, a, s)
        return -(y / c * self.rotate(p, v)).sum(-1)


_KERNELS = {"isotropic": _Isotropic(), "diagonal": _Diagonal(), "full": _Full()}


def _check_weights(weights) -> torch.Tensor:
    w = torch.as_tensor(weights, dtype=torch.float64)
    if w.ndim != 1 or w.numel() == 0:
        raise ValueError(f"weights must be a non-empty 1-D array of shape (K,), got shape {tuple(w.shape)}")
    if not torch.isfinite(w).all() or (w < 0).any():
        raise ValueError("weights must be finite and non-negative")
    if abs(float(w.sum()) - 1) > 1e-6:
        raise ValueError(f"weights must sum to 1 (within 1e-6), got sum {float(w.sum()):.8g}")
    return w / w.sum()


def _check_covs(covs, K: int, d: int):
    c = torch.as_tensor(covs, dtype=torch.float64)
    if not torch.isfinite(c).all():
        raise ValueError("covs contains NaN or inf")
    if c.shape == (K,):
        kind = "isotropic"
    elif c.shape == (K, d):
        kind = "diagonal"
    elif c.shape == (K, d, d):
        kind = "full"
    else:
        raise ValueError(
            f"covs must have shape (K,) isotropic variances, (K, d) diagonal variances or "
            f"(K, d, d) full covariances with K={K}, d={d}; got {tuple(c.shape)}"
        )
    if kind == "full":
        if not torch.allclose(c, c.transpose(1, 2), rtol=1e-10, atol=1e-12):
            raise ValueError("covs must be symmetric positive definite: a covariance is not symmetric")
        if (torch.linalg.eigvalsh(c) <= 0).any():
            raise ValueError("covs must be symmetric positive definite: a covariance has an eigenvalue <= 0")
    elif (c <= 0).any():
        raise ValueError(f"covs ({kind} variances) must be > 0")
    return c, kind


class GaussianMixture(Target):
    r"""Mixture :math:`\sum_k w_k N(\mu_k, \Sigma_k)` in :math:`\mathbb{R}^d`.

    Parameters
    ----------
    weights : array of shape (K,)
        Non-negative, summing to 1 (within 1e-6; then divided by their sum).
    means : array of shape (K, d)
    covs : array of shape (K,), (K, d) or (K, d, d)
        Isotropic variances :math:`\Sigma_k = c_k I`, diagonal variances, or full
        symmetric positive-definite covariances.

    Examples
    --------
    >>> gmm = GaussianMixture([0.5, 0.5], [[-1.0], [1.0]], [0.25, 0.25])
    >>> gmm.score(torch.zeros(3, 1), alpha=0.9, sigma=0.4).shape
    torch.Size([3, 1])
    """

    def __init__(self, weights, means, covs):
        w = _check_weights(weights)
        mu = torch.as_tensor(means, dtype=torch.float64)
        if mu.ndim != 2 or mu.shape[0] != w.numel():
            raise ValueError(f"means must have shape (K, d) with K={w.numel()}, got {tuple(mu.shape)}")
        if not torch.isfinite(mu).all():
            raise ValueError("means contains NaN or inf")
        c, kind = _check_covs(covs, w.numel(), mu.shape[1])
        self._setup(w, mu, c, kind)

    def _setup(self, w, mu, c, kind):
        self.weights, self.means, self.covs, self.kind = w, mu, c, kind
        self.K, self.d = mu.shape
        self._kernel = _KERNELS[kind]
        if kind == "full":
            lam, U = torch.linalg.eigh(c)
            self._eig = (lam, U)

    def _params(self):
        p = {"log_w": torch.log(self.weights), "mu": self.means}
        if self.kind == "isotropic":
            p.update(c=self.covs, mu_sq=(self.means**2).sum(1))
        elif self.kind == "diagonal":
            p.update(c=self.covs)
        else:
            lam, U = self._eig
            K, d = lam.shape
            p.update(
                lam=lam,
                U=U,
                U_rows=U.permute(1, 0, 2).reshape(d, K * d),  # [i, (k, j)] = U[k, i, j]
                U_cols=U.transpose(1, 2).reshape(K * d, d),  # [(k, j), i] = U[k, i, j]
                muU=torch.einsum("ki,kij->kj", self.means, U),
            )
        return p

    # -- chunking over n bounds memory at (n_chunk, K[, d]) --------------------------
    def _chunks(self, n):
        width = self.K * (self.d if self.kind != "isotropic" else 1)
        size = max(1, _CHUNK_ELEMENTS // width)
        return [slice(i, min(i + size, n)) for i in range(0, n, size)]

    def _map(self, fn, x, *others, a, s):
        def part(t, sl):
            return t if t.shape[0] == 1 else t[sl]

        outs = [fn(x[sl], *(o[sl] for o in others), part(a, sl), part(s, sl)) for sl in self._chunks(x.shape[0])]
        return torch.cat(outs) if len(outs) > 1 else outs[0]

    def _log_joint(self, p, x, a, s):
        return self._kernel.log_joint(p, x, a, s)

    def _posterior(self, p, x, a, s):
        r"""Responsibilities :math:`r_k(x) = \operatorname{softmax}_k(\log w_k + \log N_k(x))`, those
        below :math:`m = e^{\ell}` with :math:`\ell = \log(\text{tiny}) + \log K + 1` set to 0.

        Shifted logits are clamped at :math:`\ell` before the exponential and values at or below
        :math:`m` zeroed after the normalisation, so that no subnormal number is ever formed
        (``tiny`` is the dtype's smallest normal number; m is 2e-36 in float32, 5e-306 in
        float64): the zeroed responsibilities change no digit of a score or an HVP. Subnormal
        operands make CPU arithmetic 10-30x slower: at n = 65536, d = 256, K = 64 in float32
        (3.7% of the responsibilities subnormal), torch.softmax took 12 ms against 3 ms here
        and the matmul after it 72.8 ms against 23.9 ms.
        """
        lj = self._log_joint(p, x, a, s)
        floor = math.log(torch.finfo(lj.dtype).tiny) + math.log(lj.shape[1]) + 1.0
        if lj.requires_grad:  # autograd keeps exp's output: the same steps out of place
            r = torch.exp(torch.clamp(lj - lj.amax(1, keepdim=True), min=floor))
            r = r / _row_sum(r)
        else:
            r = lj.sub_(lj.amax(1, keepdim=True)).clamp_(min=floor).exp_()
            r.div_(_row_sum(r))
        return torch.nn.functional.threshold_(r, math.exp(floor), 0.0)

    def _log_prob(self, x, a, s):
        p = self._cast(x)
        return self._map(lambda xc, ac, sc: torch.logsumexp(self._log_joint(p, xc, ac, sc), 1), x, a=a, s=s)

    def responsibilities(self, x, alpha=1.0, sigma=0.0) -> torch.Tensor:
        r"""Posterior component probabilities :math:`r_k(x)`, shape (n, K)."""
        a, s = self._prepare(x, alpha, sigma)
        p = self._cast(x)
        return self._map(lambda xc, ac, sc: self._posterior(p, xc, ac, sc), x, a=a, s=s)

    def _score_chunk(self, p, x, a, s):
        r = self._posterior(p, x, a, s)
        return self._kernel.wscore(p, x, r, a, s)

    def _score(self, x, a, s):
        p = self._cast(x)
        return self._map(lambda xc, ac, sc: self._score_chunk(p, xc, ac, sc), x, a=a, s=s)

    def _hvp_chunk(self, p, x, v, a, s):
        k = self._kernel
        r = self._posterior(p, x, a, s)
        score = k.wscore(p, x, r, a, s)
        return (
            -k.wprec(p, v, r, a, s)
            + k.wscore(p, x, r * k.sdot(p, x, v, a, s), a, s)
            - score * torch.linalg.vecdot(score, v, dim=1)[:, None]
        )

    def _hvp(self, x, v, a, s):
        p = self._cast(x)
        return self._map(lambda xc, vc, ac, sc: self._hvp_chunk(p, xc, vc, ac, sc), x, v, a=a, s=s)

    # -- moments and sampling -------------------------------------------------------
    def component_covariances(self) -> torch.Tensor:
        r"""The components' covariances :math:`\Sigma_k` as full matrices (float64, shape (K, d, d))."""
        eye = torch.eye(self.d, dtype=torch.float64)
        if self.kind == "isotropic":
            return self.covs[:, None, None] * eye
        if self.kind == "diagonal":
            return torch.diag_embed(self.covs)
        return self.covs

    def mean(self) -> torch.Tensor:
        r""":math:`E X_0 = \sum_k w_k \mu_k` (float64, shape (d,))."""
        return self.weights @ self.means

    def covariance(self) -> torch.Tensor:
        r""":math:`\operatorname{Cov} X_0 = \sum_k w_k(\Sigma_k + \mu_k\mu_k^T) - m m^T` (float64, (d, d))."""
        m = self.mean()
        second = torch.einsum("k,kij->ij", self.weights, self.component_covariances() + self.means[:, :, None] * self.means[:, None, :])
        return second - torch.outer(m, m)

    def sample(self, n, generator=None, dtype=torch.float64, device=None):
        """Draw n samples of X0 (component by torch.multinomial, then mu_k + Sigma_k^(1/2) z)."""
        check_positive_int(n, "n")
        z = _randn((n, self.d), generator, dtype, device)
        p = self._cast(z)
        k = torch.multinomial(self.weights.to(z.device), n, replacement=True, generator=generator)
        if self.kind == "isotropic":
            return p["mu"][k] + torch.sqrt(p["c"][k])[:, None] * z
        if self.kind == "diagonal":
            return p["mu"][k] + torch.sqrt(p["c"][k]) * z
        root = p["U"] * torch.sqrt(p["lam"])[:, None, :]  # U diag(sqrt lam)
        size = max(1, _CHUNK_ELEMENTS // self.d**2)  # the gather root[k] holds size * d * d numbers
        parts = [torch.einsum("nij,nj->ni", root[k[i : i + size]], z[i : i + size]) for i in range(0, n, size)]
        return p["mu"][k] + torch.cat(parts)


def ring_mixture(K: int = 8, radius: float = 2.0, variance: float = 0.04) -> GaussianMixture:
    r"""The 2-D toy of the consistency-model literature: K equal isotropic Gaussians
    :math:`N(r(\cos 2\pi k/K, \sin 2\pi k/K), vI)`, k = 0..K-1. Coordinate variance
    :math:`r^2/2 + v`."""
    check_positive_int(K, "K")
    check_positive(radius, "radius")
    check_positive(variance, "variance")
    ang = torch.arange(K, dtype=torch.float64) * 2 * math.pi / K
    return GaussianMixture([1.0 / K] * K, radius * torch.stack([torch.cos(ang), torch.sin(ang)], 1), [variance] * K)
