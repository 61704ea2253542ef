"""Shared timing helpers for the benchmark scripts (median of repeats after a warm-up)."""

from __future__ import annotations

import platform
import statistics
import time

import torch


def timeit(fn, repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of fn() in seconds (CUDA synchronised when on a GPU)."""
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def machine() -> str:
    """One line naming the machine and versions."""
    dev = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return (
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, {dev}; "
        f"python {platform.python_version()}, torch {torch.__version__}"
    )
