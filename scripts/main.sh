#!/usr/bin/env bash
# Set up, then run the main job: the quick profile (regenerates the rate figures and paper_checks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/cmtheory run all --profile quick --jobs 2 "$@"
