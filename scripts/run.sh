#!/usr/bin/env bash
# The main job on built-in defaults: set up .venv, then `heedful audit` (does SmolLM2 read its instructions?).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
exec "${HEEDFUL_VENV:-.venv}/bin/heedful" audit "$@"
