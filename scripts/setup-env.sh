#!/usr/bin/env bash
# Create the venv and install heedful with everything the main job and the tests need.
#
#   bash scripts/setup-env.sh            # $HEEDFUL_VENV or .venv: exactly requirements/lock.txt (what CI tests)
#   bash scripts/setup-env.sh --latest   # $HEEDFUL_LATEST_VENV or .venv-latest: the newest releases
#                                        # pyproject.toml allows (never the locked venv)
#
# The locked venv is keyed by the lock, pyproject.toml and this script: when one changes,
# the venv is rebuilt from scratch, so it never keeps packages the lock dropped.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=locked
if [ "${1:-}" = "--latest" ]; then MODE=latest; fi
if [ "$MODE" = latest ]; then VENV="${HEEDFUL_LATEST_VENV:-.venv-latest}"; else VENV="${HEEDFUL_VENV:-.venv}"; fi
PY="${PYTHON:-python3}"
# tcmalloc: the heedful command preloads it (src/heedful/allocator.py); CPU training with
# glibc's malloc runs slower and holds more memory. A system library, so from apt. Found
# the way the command finds it (allocator.py needs only the standard library).
has_tcmalloc() {
  PYTHONPATH=src "$PY" -c "import sys; from heedful.allocator import find_tcmalloc; sys.exit(find_tcmalloc() is None)"
}
if [ "$(uname -s)" = Linux ] && ! has_tcmalloc; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing libtcmalloc-minimal4 (apt-get)" >&2
    apt-get install -y -qq libtcmalloc-minimal4 >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq libtcmalloc-minimal4 >/dev/null 2>&1; } \
      || echo "setup: could not install libtcmalloc-minimal4; CPU training will use the system allocator" >&2
  else
    echo "setup: no tcmalloc; for faster CPU training: sudo apt-get install libtcmalloc-minimal4" >&2
  fi
fi
stamp="$VENV/.heedful-installed"
want="$MODE-$(cat pyproject.toml requirements/*.txt scripts/setup-env.sh | sha256sum | cut -d' ' -f1)"
if [ "$MODE" = locked ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
if [ -f "$stamp" ] && [ "$MODE" = locked ]; then  # made by this script: safe to rebuild
  echo "setup: the lock changed; rebuilding $VENV" >&2
  rm -rf "$VENV"
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip_install() { "$VENV/bin/python" -m pip install --disable-pip-version-check -q "$@"; }
# torch first, pinned: an unpinned torch would pull a multi-GB CUDA build. Elsewhere than
# these machines, get the CPU build with PIP_EXTRA_INDEX_URL set to PyTorch's CPU index.
pip_install -r requirements/torch.txt
if [ "$MODE" = locked ]; then
  pip_install -r requirements/lock.txt
  pip_install --no-deps -e .
else
  pip_install --upgrade --upgrade-strategy eager -c requirements/torch.txt -e ".[test,embeddings,bench]"
fi
pip_install --no-deps -r requirements/no-deps.txt
"$VENV/bin/python" -m pip freeze --exclude-editable > "$VENV/.heedful-freeze.txt"
echo "$want" > "$stamp"
