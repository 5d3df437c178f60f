#!/usr/bin/env bash
# The test suite: set up the venv, then pytest (unit tests and SmolLM2 integration tests).
#
#   bash scripts/test.sh            # against requirements/lock.txt, as CI does
#   bash scripts/test.sh --latest   # against the newest releases pyproject.toml allows ($HEEDFUL_LATEST_VENV or .venv-latest)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--latest" ]; then
  shift
  export HEEDFUL_VENV="${HEEDFUL_LATEST_VENV:-.venv-latest}" HEEDFUL_LATEST=1
  HEEDFUL_LATEST_VENV="$HEEDFUL_VENV" bash scripts/setup-env.sh --latest
  # Version pins, lower-cased, without local build labels (+cpu); pip's own tools left out.
  pins() { grep -E '^[A-Za-z0-9_.-]+==' "$1" | tr 'A-Z_' 'a-z-' | sed -E 's/\+[a-z0-9.]+$//' | grep -vE '^(pip|setuptools|wheel)==' | sort; }
  changed="$(comm -13 <({ pins requirements/lock.txt; pins requirements/no-deps.txt; } | sort) <(pins "$HEEDFUL_VENV/.heedful-freeze.txt") || true)"
  echo "test: newest releases; versions that differ from the lock: ${changed:-none}" | tr '\n' ' ' >&2
  echo >&2
else
  bash scripts/setup-env.sh
fi
# The report's browser test drives Debian's Chromium; install it where we may (root, apt-get).
# Elsewhere the test is skipped and says why.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "test: installing chromium (apt-get) for the report's browser test" >&2
  { DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; }; } \
    || echo "test: could not install chromium; the browser test will be skipped" >&2
fi
exec "${HEEDFUL_VENV:-.venv}/bin/python" -m pytest -q "$@"
