"""Run every benchmark and write BENCHMARKS.md.

    python -m benchmarks.run_all [--out BENCHMARKS.md] [--skip-sweeps] [--device cpu|cuda]

Every ratio is measured in the same process (or, for peak memory, in fresh subprocesses of
the same interpreter). Nothing here is a test: numbers are recorded, targets compared.
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing as mp
import resource
import subprocess
import sys
import time

import numpy as np
import torch

from benchmarks.baselines import numpy_ddpm, scheduler_loop
from benchmarks.bench_scores import gmm, score_rows
from benchmarks.common import machine, timeit
from cmtheory.processes import linear_schedule
from cmtheory.samplers import SAMPLERS
from cmtheory.samplers.scores import CountingScore


def _sampler_section(n, d, T, K, device, lines, summary):
    target = gmm("isotropic", d, K, torch.Generator().manual_seed(0))
    sched = linear_schedule(T)
    y0 = torch.randn(n, d, generator=torch.Generator().manual_seed(1)).to(device)
    x = y0.clone()
    target.score(x, 0.5, 0.5)

    def repeat(fn, calls):
        def run():
            for _ in range(calls):  # outputs are dropped: keeping them would hold calls x n x d floats
                fn()

        return timeit(run, repeats=1, warmup=0)

    def score_time(calls):
        return repeat(lambda: target.score(x, 0.5, 0.5), calls)

    def hvp_time(calls):
        return repeat(lambda: target.hvp(x, x, 0.5, 0.5), calls)

    runs = {name: (lambda s, spec=spec: spec.run(s, sched, y0, hvp=target.hvp)) for name, spec in SAMPLERS.items()}
    lines += [f"### Samplers: n = {n}, d = {d}, T = {T}, isotropic GMM K = {K}, float32, {device}", "",
              "| sampler | time (s) | samples x steps / s | score evaluations / s (HVP counted as one) | score (+HVP) cost alone (s) | overhead over the score |", "|---|---|---|---|---|---|"]
    for name, run in runs.items():
        c = CountingScore(target.score)
        t = timeit(lambda: run(c), repeats=1, warmup=0)
        calls = c.calls
        base = score_time(calls) + (hvp_time(T) if SAMPLERS[name].needs_hvp else 0.0)
        evals = calls + (T if SAMPLERS[name].needs_hvp else 0)
        lines.append(f"| {name} | {t:.2f} | {n * T / t:.3g} | {n * evals / t:.3g} | {base:.2f} | {t / base - 1:+.0%} |")
        summary[f"overhead K={K} {name}"] = t / base - 1
        summary[f"time {name}"] = t
    # what a user would otherwise write
    betas = sched.betas.float()
    t_sched = timeit(lambda: scheduler_loop(target, betas, y0), repeats=1, warmup=0)
    t_score = score_time(T)
    lines.append(f"| baseline: diffusers-style scheduler loop | {t_sched:.2f} | {n * T / t_sched:.3g} | {n * T / t_sched:.3g} | {t_score:.2f} | |")
    g = torch.Generator(device=device).manual_seed(2)
    summary.update({"time scheduler": t_sched, "step score": t_score / T, "step randn": timeit(lambda: torch.randn(y0.shape, generator=g, device=device)), "step pass": timeit(lambda: y0 * 2.0)})
    w = target.weights.numpy().astype(np.float32)
    mu = target.means.numpy().astype(np.float32)
    cc = target.covs.numpy().astype(np.float32)
    yn = y0.cpu().numpy()
    t_np = timeit(lambda: numpy_ddpm(w, mu, cc, sched.betas.numpy(), yn, np.random.default_rng(0)), repeats=1, warmup=0)
    lines.append(f"| baseline: numpy loop | {t_np:.2f} | {n * T / t_np:.3g} | {n * T / t_np:.3g} | | |")
    summary["time numpy"] = t_np
    lines.append("")


def _metric_child(method, n, d, q):
    from cmtheory.metrics import wasserstein

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((n, d)), rng.standard_normal((n, d)) + 0.5
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    kwargs = {"method": method, "batches": 2}
    if method == "sinkhorn":
        kwargs["reg"] = 1.0
    wasserstein(x, y, **kwargs)
    q.put((time.perf_counter() - t0, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024))


def _metric_section(lines, budget_s=60.0):
    lines += ["### Metrics: time and peak memory against n (d = 64 for emd, d = 8 for Sinkhorn and sliced; 2 batches of n/2)", "",
              "| method | n | time (s) | peak extra memory (MiB) |", "|---|---|---|---|"]
    ctx = mp.get_context("spawn")
    plans = [("emd", 64, [1024, 2048, 4096]), ("sinkhorn", 8, [1000, 4000, 16000]), ("sliced", 8, [10_000, 100_000, 1_000_000])]
    for method, d, ns in plans:
        for n in ns:
            q = ctx.Queue()
            p = ctx.Process(target=_metric_child, args=(method, n, d, q))
            p.start()
            p.join(budget_s)
            if p.is_alive():
                p.kill()
                lines.append(f"| {method} | {n} | > {budget_s:.0f} (stopped) | |")
                break
            t, mem = q.get()
            lines.append(f"| {method} | {n} | {t:.2f} | {mem:.0f} |")
    lines.append("")


SWEEP_EXPERIMENTS = ("manifold", "consistency_training", "scm")  # accelerated: ~10 min serially


def _sweep_section(lines, summary):
    lines += ["### Sweeps: the quick profile, serial against --jobs 2 (fresh results directories)", "", "| experiment | serial (s) | --jobs 2 (s) | speed-up |", "|---|---|---|---|"]
    for name in SWEEP_EXPERIMENTS:
        times = []
        for jobs in (1, 2):
            out = f"/tmp/cmtheory-bench-sweep-{name}-{jobs}"
            subprocess.run(["rm", "-rf", out], check=True)
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "cmtheory.cli", "--results", out, "--figures", out + "/fig", "--checks", out + "/checks.md", "run", name, "--jobs", str(jobs), "--quiet"], check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
        lines.append(f"| {name} | {times[0]:.1f} | {times[1]:.1f} | {times[0] / times[1]:.2f}x |")
        summary[f"sweep {name}"] = times[0] / times[1]
    lines.append("")


class _Echo(list):
    """A list of report lines that prints each line as it is added (partial runs keep their output)."""

    def append(self, line):
        print(line, flush=True)
        super().append(line)

    def __iadd__(self, lines):
        for line in lines:
            self.append(line)
        return self


def _targets(summary, device):
    """Each target of the issue against the measured number: met, or missed by how much."""
    out = ["## Targets", "", "| target | measured | verdict |", "|---|---|---|"]
    for key, frac in summary.items():
        if key.startswith("score "):
            out.append(f"| {key[6:]} score at >= 50% of the matmul rate | {frac:.0%} | {'met' if frac >= 0.5 else f'missed by {0.5 - frac:.0%} of the matmul rate'} |")
    for key, ov in summary.items():
        if key.startswith("overhead ") and key.endswith((" ddpm", " exact_covariance", " ddim")):
            out.append(f"| sampler overhead <= 10% ({key[9:]}, n = 1e5) | {ov:+.0%} | {'met' if ov <= 0.10 else f'missed by {ov - 0.10:.0%}'} |")
    gpu = "not measured: no GPU was lent to this task" if device == "cpu" else "see the tables above"
    out += [f"| GPU >= 10x CPU throughput at n = 1e6 | {gpu} | {'not measured' if device == 'cpu' else 'see above'} |", ""]
    return out


def _notes(summary, T):
    """Why targets are missed, with the numbers of this run."""
    iso = summary.get("score GMM isotropic K=64", float("nan"))
    ov = {k[len("overhead K=16 "):]: v for k, v in summary.items() if k.startswith("overhead K=16 ")}
    out = [
        f"## Why targets are missed (measured in this run, {datetime.date.today().isoformat()})",
        "",
        f"- Isotropic GMM score at {iso:.0%} of the matmul rate ({summary.get('iso_vs_mm', float('nan')):.2f}x the two matmuls): besides the two",
        "  (n x d)(d x K) matmuls the kernel makes three memory-bound passes over the (n, d) input and output (the finiteness check,",
        "  the squared norms, the fused final combination) and several over (n, K); at K = 64 those passes cost about as much as the",
        "  matmuls, and the (n x K)(K x d) product runs below the peak rate (inner dimension 64). Earlier versions took 186-213 ms;",
        "  `torch.isfinite(x).all()` alone took 40 ms and is now one aminmax pass (4 ms).",
        f"- Sampler overhead over the score: DDPM {ov.get('ddpm', float('nan')):+.0%}, exact covariance {ov.get('exact_covariance', float('nan')):+.0%},",
        f"  Hessian-free {ov.get('hessian_free', float('nan')):+.0%}, DDIM {ov.get('ddim', float('nan')):+.0%}. At K = 16 the score is cheap",
        f"  ({summary.get('step score', float('nan')) * 1e3:.1f} ms per call at n = 1e5, d = 64); one draw of n x d Gaussian numbers costs",
        f"  {summary.get('step randn', float('nan')) * 1e3:.1f} ms and one elementwise pass over (n, d) {summary.get('step pass', float('nan')) * 1e3:.1f} ms, so a stochastic step",
        "  is dominated by its Gaussian draw, and DDIM by its few passes (the score-to-denoiser conversion and the update) next to a",
        "  score that is itself mostly elementwise work. The 10% target is out of reach at this K whatever the loop does: the draw",
        "  alone exceeds the score. It is within reach where the score dominates (exact covariance adds an HVP; larger K).",
        f"  DDPM here: {summary.get('time ddpm', float('nan')):.1f} s; the diffusers-style scheduler loop {summary.get('time scheduler', float('nan')):.1f} s; the numpy loop {summary.get('time numpy', float('nan')):.1f} s.",
        f"- Run length: T = {T} sampler steps (throughput per step does not depend on T; the issue's T = 1000 takes about 10x longer",
        "  per sampler, which this 2-core run does not afford), no K = 256 row.",
        "- Sinkhorn: the log-domain solver needs thousands of iterations at reg = 1 on these clouds; points that exceed the 60 s",
        "  budget are listed as such. Peak memory is the rise of max RSS above the peak after imports, so allocations smaller",
        "  than the import peak read as 0.",
        "- Sweeps: per-config work is single-threaded numpy/torch, so 2 workers on 2 cores give at most 2x; short sweeps",
        "  (manifold) are dominated by start-up and the final table and figure writing.",
        "- GPU: no device was lent to this task; nothing was measured on a GPU.",
        "",
    ]
    return out




def _cost_section(lines, results="results/accelerated.csv"):
    """Score evaluations each registered sampler needs to reach TV <= eps, read from claim E's
    exact laws (d = 1, linear schedule, start q_T); samplers without an exact law are listed as such."""
    import pandas as pd

    from experiments.accelerated import COST_EPS, cost_phrase, exact_curve

    try:
        df = pd.read_csv(results)
    except FileNotFoundError:
        lines += [f"### Cost to reach a given TV: not measured ({results} is missing; run `cmtheory run accelerated`)", ""]
        return
    lines += ["### Cost to reach a given TV (score evaluations, exact laws of claim E, d = 1, linear schedule, start q_T)", "",
              "| sampler | " + " | ".join(f"TV <= {e:g}" for e in COST_EPS) + " |", "|---|" + "---|" * len(COST_EPS)]
    for name in SAMPLERS:
        T, v, _ = exact_curve(df, name)
        cells = [cost_phrase(T, v, name, e).split(": ", 1)[1] for e in COST_EPS] if len(T) else ["no exact law (Monte Carlo only)"] * len(COST_EPS)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="BENCHMARKS.md")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--skip-sweeps", action="store_true")
    ap.add_argument("--T", type=int, default=1000, help="sampler steps at K = 16 (the issue's setting is 1000)")
    args = ap.parse_args(argv)
    lines = _Echo()
    lines += ["# Benchmarks", "", f"Recorded {datetime.date.today().isoformat()} with `python -m benchmarks.run_all {' '.join(argv if argv is not None else sys.argv[1:])}` on {machine()}.", ""]
    summary = {}
    rows, t_mm, mm_rate = score_rows(65536, 256, 64, args.device)
    lines += ["### Score evaluation: n = 65536, d = 256, float32", "", f"Reference: the isotropic score's two equivalent matmuls (x mu^T and r mu, K = 64) take {t_mm * 1e3:.1f} ms, {mm_rate:.1f} GFLOP/s.", "",
              "| target | time (ms) | achieved GFLOP/s | fraction of matmul rate | time / two matmuls |", "|---|---|---|---|---|"]
    for name, t, rate, ratio in rows:
        rate_cells = f"{rate:.1f} | {rate / mm_rate:.0%}" if rate else "n/a (no matmul-equivalent count) | n/a"
        ratio_cell = f"{ratio:.2f}x" if ratio else ""
        lines.append(f"| {name} | {t * 1e3:.1f} | {rate_cells} | {ratio_cell} |")
        if rate:
            summary[f"score {name}"] = rate / mm_rate
        if ratio:
            summary["iso_vs_mm"] = ratio
    lines.append("")
    # the setting is T = 1000; throughput per step does not depend on T
    _sampler_section(100_000, 64, args.T, 16, args.device, lines, summary)
    _cost_section(lines)
    _metric_section(lines)
    if not args.skip_sweeps:
        _sweep_section(lines, summary)
    lines += _targets(summary, args.device) + _notes(summary, args.T)
    with open(args.out, "w") as fh:
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
