#!/usr/bin/env bash
# Re-resolve requirements/lock.txt, the exact set that setup installs and CI tests, from
# pyproject.toml's ranges (pip-tools, in its own throwaway venv). Run it on purpose, after
# `bash scripts/test.sh --latest` passes, and commit the lock with the change that needs it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
tools="$(mktemp -d)"
trap 'rm -rf "$tools"' EXIT
"$PY" -m venv "$tools"
"$tools/bin/python" -m pip install --disable-pip-version-check -q pip-tools==7.6.2
"$tools/bin/pip-compile" --quiet --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links \
  --extra test --extra embeddings --extra bench --extra ray --extra api --extra trackers --constraint requirements/torch.txt \
  --output-file requirements/lock.txt pyproject.toml
# The lock pins torch's version, not its build: setup installs the CPU build first, and
# `torch==X` is satisfied by `X+cpu` (PEP 440 ignores local labels), so the lock never
# pulls a CUDA build on top of it.
sed -i -E 's/^(torch==[^+ ]+)\+[a-z0-9]+/\1/' requirements/lock.txt
