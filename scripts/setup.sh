#!/usr/bin/env bash
# Set up cmtheory in ./.venv on a machine with only python3.
# The venv sees system site-packages, so an existing torch (CPU or CUDA) is used as is.
# Without torch: the CPU build where no NVIDIA GPU is visible, the default build otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv --system-site-packages .venv
fi
VPY=.venv/bin/python
if ! "$VPY" -c "import torch" >/dev/null 2>&1; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    "$VPY" -m pip install --quiet torch
  else
    # The +cpu local version is the CPU-only build; fall back to the plain release if no
    # index the machine is configured with carries it.
    "$VPY" -m pip install --quiet "torch==2.13.0+cpu" || {
      echo "setup: torch==2.13.0+cpu not available from the configured indexes; installing torch==2.13.0" >&2
      "$VPY" -m pip install --quiet "torch==2.13.0"
    }
  fi
fi
"$VPY" -m pip install --quiet -e ".[dev,dask]"
"$VPY" -c "import torch, cmtheory; print('cmtheory', cmtheory.__version__, '| torch', torch.__version__, '| cuda', torch.cuda.is_available())"
