"""Score throughput of the targets against the matmuls they reduce to.

The isotropic GMM score at (n, d, K) is two (n x d) @ (d x K)-sized matmuls (x mu^T and
r mu) plus O(nK + nd) elementwise work; its time is reported next to those two matmuls
timed in the same process, as achieved FLOP/s against the matmul rate, and against its
roofline: the two matmuls plus the bytes it must move (read x, write the score, write and
read the (n, K) responsibilities once) at the memory bandwidth measured in the same run. Run: python benchmarks/bench_scores.py [--device cuda] [--n 65536]
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.common import machine, timeit
from cmtheory.targets import GaussianMixture, Sphere


def gmm(kind: str, d: int, K: int, g: torch.Generator) -> GaussianMixture:
    mu = torch.randn(K, d, generator=g, dtype=torch.float64)
    if kind == "isotropic":
        covs = torch.rand(K, generator=g, dtype=torch.float64) + 0.5
    elif kind == "diagonal":
        covs = torch.rand(K, d, generator=g, dtype=torch.float64) + 0.5
    else:
        A = torch.randn(K, d, d, generator=g, dtype=torch.float64) / d**0.5
        covs = A @ A.transpose(1, 2) + 0.5 * torch.eye(d, dtype=torch.float64)
    return GaussianMixture(torch.full((K,), 1.0 / K, dtype=torch.float64), mu, covs)


def bandwidth(device: str) -> float:
    """Measured memory bandwidth in bytes/s: a 256 MiB copy (read + write) into a preallocated buffer."""
    src = torch.rand(2**26, device=device)
    dst = torch.empty_like(src)
    return 2 * src.numel() * src.element_size() / timeit(lambda: dst.copy_(src))


def roofline(n: int, d: int, K: int, t_mm: float, bw: float, itemsize: int = 4) -> float:
    """Time of the two matmuls plus (x read + score written + responsibilities written and read) / bandwidth."""
    return t_mm + itemsize * (2 * n * d + 2 * n * K) / bw


def compiled_score_time(target, x):
    """(time, max abs difference to eager) of torch.compile(target.score), or (None, the error)."""
    try:
        fn = torch.compile(target.score)
        diff = float((fn(x, 0.8, 0.6) - target.score(x, 0.8, 0.6)).abs().max())
        return timeit(lambda: fn(x, 0.8, 0.6), repeats=3), diff
    except Exception as err:  # inductor needs a working C++ toolchain and may reject a graph: record why
        return None, f"{type(err).__name__}: {str(err).splitlines()[0][:120]}"


def score_rows(n: int, d: int, K: int, device: str, dtype=torch.float32):
    """One row per target: time, time of the 2 equivalent matmuls, achieved GFLOP/s, ratio."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=g, dtype=dtype).to(device)
    mu = torch.randn(K, d, generator=g, dtype=dtype).to(device)
    r = torch.rand(n, K, generator=g, dtype=dtype).to(device)
    t_mm = timeit(lambda: (x @ mu.T, r @ mu))
    mm_flops = 2 * (2 * n * d * K)
    rows = []
    for kind, Kk in (("isotropic", K), ("diagonal", K), ("full", max(1, K // 16))):
        target = gmm(kind, d, Kk, g)
        t = timeit(lambda: target.score(x, 0.8, 0.6), repeats=3)
        # useful flops: the matmul-equivalent work of this kernel (full: the two rotations per component)
        flops = {"isotropic": 4 * n * d * Kk, "diagonal": 8 * n * d * Kk, "full": 4 * n * d * d * Kk}[kind]
        rows.append((f"GMM {kind} K={Kk}", t, flops / t / 1e9, t / t_mm if kind == "isotropic" else None))
    sph = Sphere(d, min(d, 16), 1.0)
    t = timeit(lambda: sph.score(x, 0.8, 0.6), repeats=3)
    rows.append(("Sphere k=16", t, None, None))
    return rows, t_mm, mm_flops / t_mm / 1e9


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=65536)
    ap.add_argument("--d", type=int, default=256)
    ap.add_argument("--K", type=int, default=64)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    rows, t_mm, mm_rate = score_rows(args.n, args.d, args.K, args.device)
    print(f"# score throughput, n={args.n} d={args.d} K={args.K} float32 on {args.device} ({machine()})")
    print(f"two equivalent matmuls: {t_mm * 1e3:.1f} ms ({mm_rate:.1f} GFLOP/s)")
    for name, t, rate, ratio in rows:
        extra = f", {rate:.1f} GFLOP/s ({rate / mm_rate:.0%} of matmul)" if rate else ""
        extra += f", {ratio:.2f}x the two matmuls" if ratio else ""
        print(f"{name}: {t * 1e3:.1f} ms{extra}")


if __name__ == "__main__":
    main()
