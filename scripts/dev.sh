#!/usr/bin/env bash
# One entry point for a fresh machine: sets up .venv (idempotent) and runs a job.
#   bash scripts/dev.sh demo [args]   set up, then run the offline demo (writes an MP4 + PNG)
#   bash scripts/dev.sh test [args]   set up, then run the test suite
#   bash scripts/dev.sh setup         set up only
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${DANCE_REENACT_VENV:-.venv}"
PY="${PYTHON:-python3}"

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
  fi
  local stamp="$VENV/.installed-$(cat pyproject.toml scripts/dev.sh scripts/constraints.txt | sha256sum | cut -c1-16)"
  if [ -f "$stamp" ]; then
    return
  fi
  # Pin torch first: an unpinned torch would pull a multi-GB CUDA build from PyPI.
  if [ "$(uname -m)" = "aarch64" ]; then
    "$VENV/bin/pip" install torch==2.9.1 torchvision==0.24.1
  else
    "$VENV/bin/pip" install torch==2.14.1 torchvision==0.29.1
  fi
  "$VENV/bin/pip" install -c scripts/constraints.txt -e ".[offline,test]"
  rm -f "$VENV"/.installed-*
  touch "$stamp"
}

job="${1:-}"
shift || true
case "$job" in
  demo)  setup; exec "$VENV/bin/reenact" demo "$@" ;;
  test)  setup; export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
         exec "$VENV/bin/python" -m pytest "$@" ;;
  setup) setup ;;
  *) echo "usage: bash scripts/dev.sh {demo|test|setup} [args]" >&2; exit 2 ;;
esac
