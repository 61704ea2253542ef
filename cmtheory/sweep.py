"""Grid runner: parallel, cached on plain config values, resumable, reproducible.

Each config (a dict of plain values: str, int, float, bool; no NaN) has a key, the SHA-1 of
its sorted JSON. Its rows are written, as soon as it completes, to ``<results>/<name>/<key>.csv``
through a temporary file and ``os.replace`` (atomic on POSIX), then a checksum file
``<key>.sha1`` (SHA-1 of the bytes and the row count): a sweep killed at any moment (even
``kill -9``) loses no completed config and duplicates none, and a rerun skips every config
whose part is whole (that directory is the cache); a part that is empty, truncated, edited or
unreadable is reported by name and recomputed. ``<results>/<name>.csv`` is then rebuilt from
the parts, also atomically, and only rewritten when its bytes change (a fully cached run
writes nothing, so it also runs on read-only storage). One writer per experiment: a second
concurrent run on the same results directory stops with a message; the workers of a killed
``n_jobs > 1`` sweep exit within a second.

Seeds: every config gets ``numpy.random.SeedSequence([root_seed, int(key[:15], 16)])``,
so a config's numbers depend on the config and the root seed only, never on the order or
the parallelism. Parallelism: joblib (``n_jobs``), or a Dask cluster through joblib's dask
backend (``scheduler`` = a distributed scheduler address, or a ``distributed.Client``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import math
import os
import platform
import re
import subprocess
import threading
import time
import warnings
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd
import torch
from joblib import Parallel, delayed, parallel_config
from tqdm.auto import tqdm

import cmtheory
from cmtheory._io import write_atomic

__all__ = ["config_key", "config_seed", "check_name", "resolve_device", "run_sweep", "load_results", "part_problem", "git_commit", "changed_since", "stale_results", "verify_results", "SOURCE_FOLDERS"]

#: The folders whose code makes the numbers in results/: a table made at another commit is
#: stale when these differ between that commit and HEAD.
SOURCE_FOLDERS = ("cmtheory", "experiments")

_PLAIN = (str, int, float, bool, type(None))


def check_name(name: str) -> str:
    """An experiment name is a plain file name (letters, digits, '_', '-', '.', not starting
    with '.'): its parts and table stay inside the results directory."""
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name):
        raise ValueError(f"name must be a plain file name (letters, digits, '_', '-', '.'; no '/' and no leading '.'), got {name!r}")
    return name


def config_key(config: dict) -> str:
    """SHA-1 of the config's sorted JSON; the config must hold plain values only, and no NaN or
    infinite number (a NaN config would run, and never equal itself on resume)."""
    if not isinstance(config, dict) or not config:
        raise ValueError(f"a config must be a non-empty dict of plain values, got {config!r}")
    for k, v in config.items():
        if not isinstance(k, str):
            raise ValueError(f"config keys must be strings, got {k!r}")
        if not isinstance(v, _PLAIN):
            raise ValueError(f"config values must be plain (str, int, float, bool, None); {k!r} is {type(v).__name__}")
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"config value {k!r} must be finite, got {v!r}")
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


def _csv_bytes(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode()


def _checksum_path(part: Path) -> Path:
    return part.with_suffix(".sha1")


def _write_part(df: pd.DataFrame, part: Path) -> None:
    """The part, then its checksum sidecar (sha1 of the bytes and the row count), each atomic:
    a part without a matching sidecar is never read as complete."""
    data = _csv_bytes(df)
    write_atomic(part, data)
    write_atomic(_checksum_path(part), f"{hashlib.sha1(data).hexdigest()} {len(df)}\n".encode())


def part_problem(part: str | Path) -> str | None:
    """Why a cached part cannot be used (missing, no checksum, checksum or row count off,
    unreadable), or None when it is whole."""
    part = Path(part)
    try:
        data = part.read_bytes()
    except FileNotFoundError:
        return "missing"
    except OSError as err:
        return f"unreadable ({err})"
    try:
        digest, rows = _checksum_path(part).read_text().split()
        rows = int(rows)
    except (OSError, ValueError):
        return "no valid checksum file beside it (written before the checksums, or interrupted)"
    if hashlib.sha1(data).hexdigest() != digest:
        return "checksum mismatch (truncated or edited)"
    try:
        n = len(pd.read_csv(io.BytesIO(data)))
    except (ValueError, pd.errors.ParserError) as err:
        return f"unreadable as CSV ({err})"
    return None if n == rows and n > 0 else f"holds {n} rows, its checksum file says {rows}"


_WATCHDOG: list = []


def _exit_when_orphaned(parent: int) -> None:
    """Worker side: leave at once when the sweep's process is gone (killed, even by kill -9)
    instead of idling until the pool's timeout."""
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(0.5)


def _run_one(fn, config, root_seed, device, threads, parent=None):
    if parent is not None and not _WATCHDOG:
        _WATCHDOG.append(threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True))
        _WATCHDOG[0].start()
    if threads:
        torch.set_num_threads(threads)
    seed = config_seed(config, root_seed)
    t0 = time.perf_counter()
    rows = fn(config, seed=seed, device=device)
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise ValueError(f"the task returned no rows for config {config} (it must return a non-empty list of dicts)")
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
        seed, wall_s, device, cmtheory_version, torch_version, commit, torch_threads (the
        thread count the config ran with: float round-off, and so a neural run, depends on
        it), and the config's keys.
    """
    check_name(name)
    dev = resolve_device(device)
    parts = Path(results_dir) / name
    unique = {}
    for c in configs:
        unique.setdefault(config_key(c), dict(c))
    if any(part_problem(parts / f"{k}.csv") for k in unique):  # a fully cached run takes no lock and writes nothing
        with _writer_lock(parts):
            todo = _longest_first([c for k, c in unique.items() if not _usable(parts / f"{k}.csv")], Path(results_dir) / f"{name}.csv")
            _compute(name, todo, fn, parts, n_jobs, dev, root_seed, scheduler, progress)
    table = load_results(name, results_dir, keys=list(unique))
    write_atomic(Path(results_dir) / f"{name}.csv", _csv_bytes(table))
    return table


def _longest_first(todo: list[dict], table: Path) -> list[dict]:
    """The configs by their wall time recorded in ``table`` (the experiment's last table, e.g. the
    committed one), longest first, configs it does not record first of all: workers take the
    configs in this order, so the slowest no longer start last and leave one worker running
    alone (longest-processing-time-first scheduling). Without a readable table, the order given."""
    try:
        wall = pd.read_csv(table, usecols=["config_key", "wall_s"]).groupby("config_key")["wall_s"].max()
    except (OSError, ValueError, pd.errors.ParserError):
        return todo
    return sorted(todo, key=lambda c: -float(wall.get(config_key(c), math.inf)))


def _usable(part: Path) -> bool:
    """True for a whole cached part; a damaged one is reported by name (and then recomputed)."""
    problem = part_problem(part)
    if problem not in (None, "missing"):
        warnings.warn(f"results part {part} is damaged: {problem}; it is recomputed", RuntimeWarning, stacklevel=3)
    return problem is None


@contextlib.contextmanager
def _writer_lock(parts: Path):
    """One writer per experiment's cache: an exclusive lock on ``<parts>/.lock`` (flock, released
    by the system when the holder dies, even by kill -9); a second concurrent run of the same
    experiment on the same results directory stops at once with a clear message."""
    parts.mkdir(parents=True, exist_ok=True)
    with open(parts / ".lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            raise RuntimeError(f"another run is writing {parts}/ ({fh.read().strip() or 'pid unknown'}): one writer per experiment and results directory; wait for it to finish") from None
        fh.truncate(0)
        fh.write(f"pid {os.getpid()} on {platform.node()}\n")
        fh.flush()
        try:
            yield
        finally:
            fh.truncate(0)
            fcntl.flock(fh, fcntl.LOCK_UN)


def _compute(name, todo, fn, parts, n_jobs, dev, root_seed, scheduler, progress) -> None:
    """Run the configs in ``todo``, writing each part as it completes."""
    threads = 1 if (n_jobs != 1 or scheduler is not None) else 0
    meta = {"experiment": name, "device": dev, "cmtheory_version": cmtheory.__version__, "torch_version": torch.__version__, "commit": git_commit(), "torch_threads": threads or torch.get_num_threads()}
    parent = os.getpid() if (n_jobs != 1 and scheduler is None) else None
    tasks = (delayed(_run_one)(fn, c, root_seed, dev, threads, parent) for c in todo)

    def consume(results):
        for config, seed, wall, rows in tqdm(results, total=len(todo), disable=not progress, desc=name):
            key = config_key(config)
            _write_part(pd.DataFrame([{**meta, **config, "config_key": key, "seed": seed, "wall_s": wall, **r} for r in rows]), parts / f"{key}.csv")

    if todo:
        if scheduler is not None:
            from distributed import Client

            try:
                client = scheduler if isinstance(scheduler, Client) else Client(scheduler, timeout="10s")
            except (OSError, TimeoutError, ValueError) as err:
                raise RuntimeError(f"cannot reach the Dask scheduler at {scheduler!r}: {err}") from None
            with parallel_config(backend="dask"):
                consume(Parallel(n_jobs=-1, return_as="generator_unordered")(tasks))
            if not isinstance(scheduler, Client):
                client.close()
        elif n_jobs == 1:
            consume(_run_one(fn, c, root_seed, dev, 0) for c in todo)
        else:
            consume(Parallel(n_jobs=n_jobs, return_as="generator_unordered")(tasks))


def load_results(name: str, results_dir: str | Path = "results", keys: list[str] | None = None) -> pd.DataFrame:
    """All completed rows of an experiment (optionally only the given config keys): from the
    per-config parts where they exist and are whole (a damaged part is reported by name and
    left out), else from ``<name>.csv`` (e.g. the committed table in a fresh clone)."""
    parts = Path(results_dir) / check_name(name)
    candidates = sorted(parts.glob("*.csv")) if keys is None else [parts / f"{k}.csv" for k in keys]
    files = [f for f in candidates if _usable(f)]
    if not files:
        table = Path(results_dir) / f"{name}.csv"
        if keys is None and table.exists():
            return pd.read_csv(table)
        return pd.DataFrame()
    return pd.concat([pd.read_csv(f) for f in files], ignore_index=True)


def _git(args: list[str], cwd: Path) -> str | None:
    """stdout of a git command in ``cwd``, or None where git fails or is missing."""
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=30, cwd=cwd)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def changed_since(commit: str, folders=SOURCE_FOLDERS, repo: str | Path = ".") -> list[str] | None:
    """Files under ``folders`` that differ between ``commit`` and HEAD (``git diff --name-only``);
    None where ``repo`` is not a git checkout or ``commit`` is not in its history (a tarball,
    a shallow clone)."""
    repo = Path(repo)
    if not isinstance(commit, str) or not commit or _git(["cat-file", "-e", f"{commit}^{{commit}}"], repo) is None:
        return None
    out = _git(["diff", "--name-only", commit, "HEAD", "--", *folders], repo)
    return None if out is None else out.split()


def stale_results(results_dir: str | Path = "results", folders=SOURCE_FOLDERS, repo: str | Path | None = None) -> dict:
    """For each table ``<results_dir>/*.csv``: ``{commit: files under folders changed since it,
    or None where git cannot tell}`` over the commits its rows record. A table is current when
    every list is empty: its numbers are the output of the code at HEAD."""
    results_dir = Path(results_dir)
    repo = results_dir.resolve().parent if repo is None else Path(repo)
    out = {}
    for table in sorted(results_dir.glob("*.csv")):
        commits = pd.read_csv(table, usecols=["commit"], dtype=str)["commit"].dropna().unique()
        out[table.name] = {c: changed_since(c, folders, repo) for c in commits}
    return out


def _same(a, b) -> bool:
    """Equal as written in a table: both missing, equal numbers bit for bit, or equal text."""
    if pd.isna(a) and pd.isna(b):
        return True
    if isinstance(a, (int, float, np.number)) and isinstance(b, (int, float, np.number)):
        return float(a) == float(b)
    return str(a) == str(b)


def _compare_row(recorded: pd.Series, rerun: dict, z: float) -> list[dict]:
    """Status of each value of a rerun row against the recorded one. The row's ``value`` is
    "within CI" when both sides carry a standard error and they differ by at most z combined
    standard errors; the row's other numbers then count as that same statistical replicate."""
    se_old, se_new = recorded.get("se", np.nan), rerun.get("se", np.nan)
    replicate = False
    if "value" in rerun and not _same(recorded.get("value", np.nan), rerun["value"]) and pd.notna(se_old) and pd.notna(se_new) and se_old > 0 and se_new > 0:
        replicate = abs(float(rerun["value"]) - float(recorded["value"])) <= z * math.sqrt(se_old**2 + se_new**2)
    out = []
    for col, v in rerun.items():
        r = recorded.get(col, np.nan)
        status = "identical" if _same(r, v) else ("within CI" if replicate and isinstance(v, (int, float, np.number)) else "differs")
        out.append({"column": col, "recorded": r, "rerun": v, "status": status})
    return out


def verify_results(name: str, configs: Iterable[dict], fn: Callable[..., list[dict]], results_dir: str | Path = "results", device: str = "cpu", z: float = 1.96) -> pd.DataFrame:
    """Rerun ``configs`` with the seed and thread count recorded in ``<results_dir>/<name>.csv``
    and compare every value of every row with the recorded one.

    A value is "identical" (bit for bit, or equal text), "within CI" (the row's value differs
    by at most ``z sqrt(se_old^2 + se_new^2)``, its standard errors on both sides; the row's
    other numbers are then read as the same replicate), or "differs"; a config absent from
    the table is "missing". Rows whose method is "wall clock" (timings) are not compared.

    Returns
    -------
    pandas.DataFrame
        One row per compared value: config_key, row, metric, column, recorded, rerun, status.
    """
    table_path = Path(results_dir) / f"{check_name(name)}.csv"
    if not table_path.exists():
        raise ValueError(f"no table {table_path} to verify against (run the experiment first)")
    table = pd.read_csv(table_path)
    out = []
    threads = torch.get_num_threads()
    try:
        for config in configs:
            key = config_key(config)
            old = table[table["config_key"] == key]
            if old.empty:
                out.append({"config_key": key, "row": -1, "metric": "", "column": "", "recorded": None, "rerun": None, "status": "missing"})
                continue
            recorded_threads = old["torch_threads"].iloc[0] if "torch_threads" in old else threads
            torch.set_num_threads(int(recorded_threads))
            rows = fn(config, seed=int(old["seed"].iloc[0]), device=resolve_device(device))
            if len(rows) != len(old):
                out.append({"config_key": key, "row": -1, "metric": "", "column": "rows", "recorded": len(old), "rerun": len(rows), "status": "differs"})
                continue
            for i, (new, (_, rec)) in enumerate(zip(rows, old.iterrows())):
                if new.get("method") != "wall clock":
                    out += [{"config_key": key, "row": i, "metric": new.get("metric", ""), **c} for c in _compare_row(rec, new, z)]
    finally:
        torch.set_num_threads(threads)
    return pd.DataFrame(out, columns=["config_key", "row", "metric", "column", "recorded", "rerun", "status"])
