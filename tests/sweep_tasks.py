"""Top-level tasks for the sweep tests (importable by worker processes)."""

import time

import numpy as np


def noisy_task(config, seed, device="cpu"):
    """Rows that depend on the config and its seed only."""
    rng = np.random.default_rng(seed)
    return [{"metric": "draw", "value": float(rng.standard_normal()) + config["x"]}, {"metric": "square", "value": config["x"] ** 2}]


def failing_task(config, seed, device="cpu"):
    if config["x"] == 3:
        raise RuntimeError("config x=3 fails")
    return noisy_task(config, seed, device)


def slow_task(config, seed, device="cpu"):
    time.sleep(0.3)
    return noisy_task(config, seed, device)


def estimate_task(config, seed, device="cpu"):
    """One estimate with a standard error, and a timing row that verification must skip."""
    rng = np.random.default_rng(seed)
    return [{"metric": "mean", "value": float(rng.standard_normal()) + config["x"], "se": 0.1}, {"metric": "train_s", "value": time.perf_counter(), "method": "wall clock"}]


def empty_task(config, seed, device="cpu"):
    """A task that forgets to return rows."""
    return []
