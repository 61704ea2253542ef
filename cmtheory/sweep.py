"""Grid runner: parallel, cached on plain config values, resumable, reproducible.

Each config (a dict of plain values: str, int, float, bool) has a key, the SHA-1 of its
sorted JSON. Its rows are written, as soon as it completes, to ``<results>/<name>/<key>.csv``
through a temporary file and ``os.replace`` (atomic on POSIX): a sweep killed at any moment
(even ``kill -9``) loses no completed config and duplicates none, and a rerun skips every
config whose file exists (that directory is the cache). ``<results>/<name>.csv`` is then
rebuilt from the parts, also atomically.

Seeds: every config gets ``numpy.random.SeedSequence([root_seed, int(key[:15], 16)])``,
so a config's numbers depend on the config and the root seed only, never on the order or
the parallelism. Parallelism: joblib (``n_jobs``), or a Dask cluster through joblib's dask
backend (``scheduler`` = a distributed scheduler address, or a ``distributed.Client``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd
import torch
from joblib import Parallel, delayed, parallel_config
from tqdm.auto import tqdm

import cmtheory

__all__ = ["config_key", "config_seed", "resolve_device", "run_sweep", "load_results", "git_commit"]

_PLAIN = (str, int, float, bool, type(None))


def config_key(config: dict) -> str:
    """SHA-1 of the config's sorted JSON; the config must hold plain values only."""
    for k, v in config.items():
        if not isinstance(v, _PLAIN):
            raise ValueError(f"config values must be plain (str, int, float, bool, None); {k!r} is {type(v).__name__}")
    return hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()


def config_seed(config: dict, root_seed: int = 0) -> int:
    """A 63-bit seed derived from the root seed and the config (numpy SeedSequence)."""
    ss = np.random.SeedSequence([root_seed, int(config_key(config)[:15], 16)])
    return int(ss.generate_state(1, dtype=np.uint64)[0]) & (2**63 - 1)


def resolve_device(device: str = "auto") -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'; 'cuda' without a GPU is an error."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' but no CUDA device is visible")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    return device


def git_commit() -> str:
    """The repository's HEAD commit (short), or 'unknown' outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10, cwd=Path(__file__).parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _atomic_write_csv(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".partial")
    try:
        with os.fdopen(fd, "w") as fh:
            df.to_csv(fh, index=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _run_one(fn, config, root_seed, device, threads):
    if threads:
        torch.set_num_threads(threads)
    seed = config_seed(config, root_seed)
    t0 = time.perf_counter()
    rows = fn(config, seed=seed, device=device)
    return config, seed, time.perf_counter() - t0, rows


def run_sweep(
    name: str,
    configs: Iterable[dict],
    fn: Callable[..., list[dict]],
    results_dir: str | Path = "results",
    n_jobs: int = 1,
    device: str = "auto",
    root_seed: int = 0,
    scheduler=None,
    progress: bool = True,
) -> pd.DataFrame:
    """Run ``fn(config, seed=..., device=...) -> list of row dicts`` over the configs.

    Parameters
    ----------
    name : str
        Experiment name: parts go to ``<results_dir>/<name>/``, the table to ``<results_dir>/<name>.csv``.
    configs : iterable of dict
        Plain-valued configs; duplicates are run once.
    fn : callable
        Must be importable (top-level) for process and Dask workers.
    n_jobs : int
        joblib workers (each limited to one torch thread when n_jobs > 1).
    device : {"auto", "cpu", "cuda"}
    root_seed : int
    scheduler : str or distributed.Client, optional
        Run on a Dask cluster through joblib's dask backend.
    progress : bool
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        Every row of every config (old and new), with columns experiment, config_key,
        seed, wall_s, device, cmtheory_version, torch_version, commit, and the config's keys.
    """
    dev = resolve_device(device)
    parts = Path(results_dir) / name
    unique = {}
    for c in configs:
        unique.setdefault(config_key(c), dict(c))
    todo = [c for k, c in unique.items() if not (parts / f"{k}.csv").exists()]
    meta = {"experiment": name, "device": dev, "cmtheory_version": cmtheory.__version__, "torch_version": torch.__version__, "commit": git_commit()}
    threads = 1 if (n_jobs != 1 or scheduler is not None) else 0
    tasks = (delayed(_run_one)(fn, c, root_seed, dev, threads) for c in todo)

    def consume(results):
        for config, seed, wall, rows in tqdm(results, total=len(todo), disable=not progress, desc=name):
            key = config_key(config)
            df = pd.DataFrame([{**meta, **config, "config_key": key, "seed": seed, "wall_s": wall, **r} for r in rows])
            _atomic_write_csv(df, parts / f"{key}.csv")

    if todo:
        if scheduler is not None:
            from distributed import Client

            client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
            with parallel_config(backend="dask"):
                consume(Parallel(n_jobs=-1, return_as="generator_unordered")(tasks))
            if not isinstance(scheduler, Client):
                client.close()
        elif n_jobs == 1:
            consume(_run_one(fn, c, root_seed, dev, 0) for c in todo)
        else:
            consume(Parallel(n_jobs=n_jobs, return_as="generator_unordered")(tasks))
    table = load_results(name, results_dir, keys=list(unique))
    _atomic_write_csv(table, Path(results_dir) / f"{name}.csv")
    return table


def load_results(name: str, results_dir: str | Path = "results", keys: list[str] | None = None) -> pd.DataFrame:
    """All completed rows of an experiment (optionally only the given config keys): from the
    per-config parts where they exist (always current), else from ``<name>.csv`` (e.g. the
    committed table in a fresh clone)."""
    parts = Path(results_dir) / name
    files = sorted(parts.glob("*.csv")) if keys is None else [parts / f"{k}.csv" for k in keys if (parts / f"{k}.csv").exists()]
    if not files:
        table = Path(results_dir) / f"{name}.csv"
        if keys is None and table.exists():
            return pd.read_csv(table)
        return pd.DataFrame()
    return pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
