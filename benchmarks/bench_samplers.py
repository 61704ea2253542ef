"""Sampler throughput (samples x steps per second) against the cost of the score alone.

Overhead = sampler time / (score-evaluation time for the same evaluations) - 1; the
issue's target is < 10% at n >= 1e4. Run:
python -m benchmarks.bench_samplers [--n 100000] [--d 64] [--T 1000] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmarks.common import machine
from cmtheory.processes import linear_schedule
from cmtheory.samplers import ddpm, exact_covariance, hessian_free, li_icml2024, one_score_reuse
from cmtheory.samplers.scores import CountingScore
from cmtheory.targets import GaussianMixture


def _target(d, K=16):
    g = torch.Generator().manual_seed(0)
    return GaussianMixture(torch.full((K,), 1 / K, dtype=torch.float64), torch.randn(K, d, generator=g, dtype=torch.float64), torch.full((K,), 0.3, dtype=torch.float64))


def sampler_rows(n, d, T, device, dtype=torch.float32):
    """Rows (name, seconds, samples*steps/s, score-only seconds, overhead)."""
    target = _target(d)
    sched = linear_schedule(T)
    y0 = torch.randn(n, d, dtype=dtype, device=device)
    x = y0.clone()
    sync = torch.cuda.synchronize if str(device).startswith("cuda") else (lambda: None)
    target.score(x, 0.5, 0.5)  # warm-up and parameter cast
    rows = []
    runs = {
        "ddpm": lambda s: ddpm(s, sched, y0),
        "exact_covariance": lambda s: exact_covariance(s, target.hvp, sched, y0),
        "hessian_free": lambda s: hessian_free(s, sched, y0),
        "one_score_reuse": lambda s: one_score_reuse(s, sched, y0),
        "li_icml2024": lambda s: li_icml2024(s, sched, y0),
    }
    for name, run in runs.items():
        counter = CountingScore(target.score)
        sync()
        t0 = time.perf_counter()
        run(counter)
        sync()
        total = time.perf_counter() - t0
        # the score alone, for the same number of calls, on the same shapes
        sync()
        t0 = time.perf_counter()
        for _ in range(counter.calls):
            target.score(x, 0.5, 0.5)
        sync()
        score_only = time.perf_counter() - t0
        if name == "exact_covariance":  # its HVPs are part of the "score cost" of a second-order step
            sync()
            t0 = time.perf_counter()
            for _ in range(T):
                target.hvp(x, x, 0.5, 0.5)
            sync()
            score_only += time.perf_counter() - t0
        rows.append((name, total, n * T / total, score_only, total / score_only - 1))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--T", type=int, default=1000)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    print(f"# samplers, n={args.n} d={args.d} T={args.T}, isotropic GMM K=16, float32 on {args.device} ({machine()})")
    for name, total, rate, score_only, overhead in sampler_rows(args.n, args.d, args.T, args.device):
        print(f"{name}: {total:.1f} s, {rate:.3g} samples*steps/s, score cost alone {score_only:.1f} s, overhead {overhead:+.1%}")


if __name__ == "__main__":
    main()
