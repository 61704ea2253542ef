"""
A sweep that resumes
====================

:func:`cmtheory.sweep.run_sweep` runs ``fn(config, seed=..., device=...)`` over a grid of plain
configs; each finished config is written atomically (with a checksum) under
``<results_dir>/<name>/`` and is never recomputed, so an interrupted sweep resumes where it
stopped, and a finished one returns its table at once. Each config gets its own seed, derived
from the config itself, so the same grid gives the same numbers in any order and on any number of
workers.

The run function must be importable by worker processes, so a sweep script defines it at the top
level of a module; here the sweep runs in this process (``n_jobs=1``).
"""

import tempfile
import time

import torch

from cmtheory.metrics import tv_grid
from cmtheory.processes import linear_schedule
from cmtheory.laws import gmm_1d_law, uniform_grid
from cmtheory.samplers.exact_laws import sampler_law_1d
from cmtheory.sweep import run_sweep
from cmtheory.targets import GaussianMixture

GMM = GaussianMixture([0.4, 0.6], [[-1.0], [1.0]], [0.25, 0.16])


def ddpm_tv(config, seed, device):
    """One row: DDPM's exact TV after T steps (the seed and device are unused: exact laws)."""
    edges = uniform_grid(-8, 8, config["cells"])
    law = sampler_law_1d("ddpm", GMM, linear_schedule(config["T"]), edges)
    return [tv_grid(law, gmm_1d_law(GMM, 1.0, 0.0, edges)).as_row() | {"torch": torch.__version__}]


results = tempfile.mkdtemp()
grid = [{"T": T, "cells": 2048} for T in (25, 50, 100)]
t = time.perf_counter()
run_sweep("ddpm_tv", grid[:2], ddpm_tv, results, progress=False)
print(f"first two configs: {time.perf_counter() - t:.2f} s")

# %%
# The whole grid: the two finished configs are read back, only T = 100 is computed.
t = time.perf_counter()
df = run_sweep("ddpm_tv", grid, ddpm_tv, results, progress=False)
print(f"whole grid, resumed: {time.perf_counter() - t:.2f} s")
print(df[["T", "value", "se", "seed"]].to_string(index=False))
