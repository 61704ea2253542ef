r"""Product mixtures: one 1-D Gaussian mixture, i.i.d. in every coordinate.

:math:`X_0 = (X^{(1)}, \dots, X^{(d)})` with i.i.d. coordinates of law
:math:`\sum_k w_k N(m_k, v_k)`. The channel acts coordinate-wise, so
:math:`\log q(x) = \sum_j \log q_1(x_j)`, the score and denoiser are the 1-D ones applied
to each coordinate and the Hessian of :math:`\log q` is diagonal. Exact high-dimensional
references (laws of coordinate-wise samplers, TV, KL, W2) follow from 1-D computations.
"""

from __future__ import annotations

import torch

from cmtheory._checks import check_positive_int
from cmtheory.targets.base import Target
from cmtheory.targets.gaussian_mixture import GaussianMixture

__all__ = ["ProductMixture"]


class ProductMixture(Target):
    r"""The 1-D mixture :math:`\sum_k w_k N(m_k, v_k)` i.i.d. in each of d coordinates.

    Parameters
    ----------
    d : int
        Dimension.
    weights, means, variances : arrays of shape (K,)
        The 1-D factor; see :class:`GaussianMixture`.

    Attributes
    ----------
    factor : GaussianMixture
        The 1-D law of one coordinate (d = 1), for exact 1-D references.
    """

    def __init__(self, d, weights, means, variances):
        self.d = check_positive_int(d, "d")
        m = torch.as_tensor(means, dtype=torch.float64)
        if m.ndim != 1:
            raise ValueError(f"means must be a 1-D array of shape (K,), got shape {tuple(m.shape)}")
        self.factor = GaussianMixture(weights, m[:, None], variances)

    def _params(self):
        return {}

    def _flat(self, x, a, s):
        """(n, d) -> (n d, 1) with the channel repeated per coordinate when it is per-sample."""
        def rep(t):
            return t if t.shape[0] == 1 else t.repeat_interleave(self.d, 0)

        return x.reshape(-1, 1), rep(a), rep(s)

    def _log_prob(self, x, a, s):
        return self.factor._log_prob(*self._flat(x, a, s)).reshape(x.shape).sum(1)

    def _score(self, x, a, s):
        return self.factor._score(*self._flat(x, a, s)).reshape(x.shape)

    def _denoiser(self, x, a, s):
        return self.factor._denoiser(*self._flat(x, a, s)).reshape(x.shape)

    def hessian_diagonal(self, x, alpha=1.0, sigma=0.0) -> torch.Tensor:
        r"""The diagonal of :math:`\nabla^2\log q(x)`, i.e. :math:`(\log q_1)''(x_j)`, shape (n, d)."""
        a, s = self._prepare(x, alpha, sigma)
        return self._hessian_diagonal(x, a, s)

    def _hessian_diagonal(self, x, a, s):
        x1, a1, s1 = self._flat(x, a, s)
        return self.factor._hvp(x1, torch.ones_like(x1), a1, s1).reshape(x.shape)

    def _hvp(self, x, v, a, s):
        return self._hessian_diagonal(x, a, s) * v

    def mean(self) -> torch.Tensor:
        """E X0 = m 1 (float64, shape (d,))."""
        return self.factor.mean().expand(self.d).clone()

    def covariance(self) -> torch.Tensor:
        """Cov X0 = Var(X^(1)) I (float64, (d, d))."""
        return self.factor.covariance()[0, 0] * torch.eye(self.d, dtype=torch.float64)

    def sample(self, n, generator=None, dtype=torch.float64, device=None):
        """Draw n samples of X0: n d draws of the 1-D factor."""
        check_positive_int(n, "n")
        return self.factor.sample(n * self.d, generator, dtype, device).reshape(n, self.d)
