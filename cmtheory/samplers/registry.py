"""One registry of the samplers on the discrete VP chain: ``SAMPLERS[name]`` is a :class:`SamplerSpec`.

Experiments, benchmarks and tests read the registry instead of their own name tables; the
exact-law engine (:func:`cmtheory.samplers.exact_laws.sampler_law_1d`) covers every entry
but the two whose steps are not Gaussian given the state (``hessian_free``,
``one_score_reuse``: Monte Carlo only).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import torch

from cmtheory.samplers.chain_ode import heroism, li_icml2024_ode, on_vp_chain
from cmtheory.samplers.ode import ddim, dpm_solver_2, dpm_solver_pp_2m, heun
from cmtheory.samplers.stochastic import ddpm, exact_covariance, hessian_free, li_icml2024, one_score_reuse

__all__ = ["SamplerSpec", "SAMPLERS", "sampler_names", "cache_block_rows", "BLOCK_BYTES"]

KINDS = ("stochastic", "deterministic")


@dataclass(frozen=True)
class SamplerSpec:
    """A registered sampler.

    Attributes
    ----------
    fn : callable
        Stochastic: ``fn(score, schedule, y, generator=None, **kw)`` (``fn(score, hvp, schedule,
        y, generator=None, **kw)`` when ``needs_hvp``); deterministic: ``fn(score, schedule, y, **kw)``.
        Every one takes ``t_stop``, ``callback`` and ``return_trajectory``.
    kind : {"stochastic", "deterministic"}
    order : int
        Design order in T: the error exponent -order the rule is built for (what the analysis of
        the rule gives, not necessarily what the authors claim; ``reference`` says which).
    scores_per_step : int
        Score evaluations per step (Heun and DPM-Solver-2: one fewer in total, their last step
        to lambda = 0 is Euler).
    needs_hvp : bool
        Whether it takes a Hessian-vector product (one per step).
    reference : str
        Where the rule comes from, and what is reconstructed.
    """

    fn: Callable
    kind: str
    order: int
    scores_per_step: int
    needs_hvp: bool
    reference: str

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")

    def run(self, score, schedule, y, generator=None, *, hvp=None, block_rows=None, **kw):
        """Run the sampler from ``y`` = :math:`Y_T`.

        Parameters
        ----------
        score, schedule, y, generator
            As the sampler's function takes them; ``generator`` is refused by a deterministic sampler.
        hvp : callable, optional
            The score's Hessian-vector product, required when ``needs_hvp``.
        block_rows : int or "auto", optional
            Run the whole chain on blocks of this many rows of ``y``, one block after another, so
            that a block's iterates and the score's intermediates stay in the CPU's cache across
            the steps (:func:`cache_block_rows` for ``"auto"``). Samples are independent given the
            score, so a deterministic sampler gives the same output up to round-off; a stochastic
            sampler draws block after block from ``generator`` (reproducible, but another stream
            than the unblocked run's). Not with ``callback`` or ``return_trajectory``. None (the
            default): one block.
        **kw
            The sampler's keywords (``t_stop``, ``callback``, ``return_trajectory``, ...; a
            stochastic sampler's ``draw_ahead``, see :func:`cmtheory.samplers.stochastic.run_chain`).
        """
        if block_rows is None:
            return self._run(score, schedule, y, generator, hvp, **kw)
        rows = cache_block_rows(y) if block_rows == "auto" else block_rows
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
            raise ValueError(f"block_rows must be a positive int, 'auto' or None, got {block_rows!r}")
        if kw.get("callback") is not None or kw.get("return_trajectory"):
            raise ValueError("block_rows runs one block of rows after another: it cannot be combined with callback or return_trajectory (pass block_rows=None)")
        if not isinstance(y, torch.Tensor) or y.ndim != 2:
            raise ValueError(f"y must be a tensor of shape (n, d), got {tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__}")
        if y.shape[0] <= rows:
            return self._run(score, schedule, y, generator, hvp, **kw)
        return torch.cat([self._run(score, schedule, y[a:a + rows], generator, hvp, **kw) for a in range(0, y.shape[0], rows)])

    def _run(self, score, schedule, y, generator, hvp, **kw):
        if self.needs_hvp:
            if hvp is None:
                raise ValueError("this sampler needs hvp(x, v, alpha, sigma), the score's Hessian-vector product")
            return self.fn(score, hvp, schedule, y, generator, **kw)
        if self.kind == "deterministic":
            if generator is not None:
                raise ValueError("a deterministic sampler takes no generator")
            return self.fn(score, schedule, y, **kw)
        return self.fn(score, schedule, y, generator, **kw)


#: bytes of one (rows, d) block for ``block_rows="auto"``: at n = 1e5, d = 64, float32, K = 16 on
#: 2 cores with a 32 MiB L3, DDIM took 13.8 ms a step unblocked, 10.3 at 4096 rows (1 MiB) and
#: 8.3 at 16384 (4 MiB); HEROISM 146, 89 and 84; DPM-Solver++(2M) 16.4, 11.0 and 9.6
BLOCK_BYTES = 1 << 22


def cache_block_rows(y: torch.Tensor) -> int:
    """Rows of ``y`` in :data:`BLOCK_BYTES` on a CPU (at least one); all rows on other devices,
    whose caches a whole batch does not fit and whose kernels want large batches."""
    if y.device.type != "cpu":
        return max(1, y.shape[0])
    return max(1, BLOCK_BYTES // max(1, y[:1].numel() * y.element_size()))


SAMPLERS: dict[str, SamplerSpec] = {
    "ddpm": SamplerSpec(ddpm, "stochastic", 1, 1, False, "Ho et al. 2020; the sampler of Li & Yan 2024 (arXiv 2409.18959), TV <~ d log^3 T / T"),
    "exact_covariance": SamplerSpec(exact_covariance, "stochastic", 2, 1, True, "cmtheory's T^-2 principle (docs/papers.md, section E): exact mean and covariance to O(beta^3); a stand-in for Li & Cai 2024, whose rule is not public"),
    "hessian_free": SamplerSpec(hessian_free, "stochastic", 2, 3, False, "the exact-covariance step with H z from a symmetric score difference (docs/papers.md, section E)"),
    "one_score_reuse": SamplerSpec(one_score_reuse, "stochastic", 1, 1, False, "a reconstruction in the spirit of Li & Cai 2024 (arXiv 2410.23285); its forward difference shifts the mean by O(beta^2) per step, so first order"),
    "li_icml2024": SamplerSpec(li_icml2024, "stochastic", 1, 1, False, "Li, Huang, Efimov, Wei, Chi & Chen, ICML 2024 (arXiv 2403.03852), the authors' code; they claim TV O(1/T)"),
    "ddim": SamplerSpec(on_vp_chain(ddim), "deterministic", 1, 1, False, "Song, Meng & Ermon 2021"),
    "heun": SamplerSpec(on_vp_chain(heun), "deterministic", 2, 2, False, "Karras et al. 2022, Algorithm 1 without churn"),
    "dpm_solver_2": SamplerSpec(on_vp_chain(dpm_solver_2), "deterministic", 2, 2, False, "Lu et al. 2022 (DPM-Solver-2, k-diffusion's sample_dpm_2)"),
    "dpm_solver_pp_2m": SamplerSpec(on_vp_chain(dpm_solver_pp_2m), "deterministic", 2, 1, False, "Lu et al. 2022b (DPM-Solver++(2M))"),
    "li_icml2024_ode": SamplerSpec(li_icml2024_ode, "deterministic", 2, 1, False, "Li, Huang, Efimov, Wei, Chi & Chen, ICML 2024 (arXiv 2403.03852), the authors' code; they claim TV O(1/T^2)"),
    "heroism_k2": SamplerSpec(functools.partial(heroism, K=2), "deterministic", 2, 4, False, "Li, Zhou, Wei & Chen 2025 (arXiv 2506.24042), K = 2, N = 2; TV ~ (d/T)^K"),
    "heroism": SamplerSpec(functools.partial(heroism, K=3), "deterministic", 3, 9, False, "Li, Zhou, Wei & Chen 2025 (arXiv 2506.24042), K = 3, N = 3; TV ~ (d/T)^K"),
}


def sampler_names(kind: str | None = None) -> list[str]:
    """Registered names, all or those of one ``kind``."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS} or None, got {kind!r}")
    return [name for name, spec in SAMPLERS.items() if kind is None or spec.kind == kind]
