#!/usr/bin/env bash
# Set up (with the docs extra), then build the documentation site into docs/_build/html:
# the API reference from the docstrings, docs/papers.md and docs/glossary.md, and the example
# gallery, every example executed. Warnings are errors (CI runs this).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pip install --quiet -e ".[docs]"
rm -rf docs/_build docs/api/generated docs/auto_examples docs/sg_execution_times.rst
exec .venv/bin/python -m sphinx -W --keep-going -b html docs docs/_build/html "$@"
