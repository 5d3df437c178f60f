#!/usr/bin/env bash
# The test suite: set up the venv, then pytest (unit tests and SmolLM2 integration tests).
#
#   bash scripts/test.sh            # against requirements/lock.txt, as CI does
#   bash scripts/test.sh --latest   # against the newest releases pyproject.toml allows (in .venv-latest)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--latest" ]; then
  shift
  export HEEDFUL_VENV="${HEEDFUL_VENV:-.venv-latest}"
  bash scripts/setup-env.sh --latest
  echo "test: newest releases; differences from the lock:" >&2
  diff <(grep -E '^[A-Za-z0-9_.-]+==' requirements/lock.txt | tr 'A-Z_' 'a-z-' | sort) \
       <(tr 'A-Z_' 'a-z-' < "$HEEDFUL_VENV/.heedful-freeze.txt" | sed -E 's/\+[a-z0-9.]+$//' | sort) \
       | grep '^[<>]' >&2 || echo "  none" >&2
else
  bash scripts/setup-env.sh
fi
exec "${HEEDFUL_VENV:-.venv}/bin/python" -m pytest -q "$@"
