#!/usr/bin/env bash
# The test suite: set up .venv, then pytest (unit tests and SmolLM2 integration tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
exec "${HEEDFUL_VENV:-.venv}/bin/python" -m pytest -q "$@"
