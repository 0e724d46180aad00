#!/usr/bin/env bash
# Make benchmarks/.pypet-venv: pypet and numba for benchmarks/pypet_lif.py,
# the pypet reference that benchmarks/bench_lif.py prints beside explorer.
#
#   bash benchmarks/setup_pypet.sh        # last line printed: the venv's python
#
# Idempotent: a venv whose python already imports the pinned versions is
# reused as it is; one with other versions gets the pins installed; a broken
# one is made anew. Set PYPET_PYTHON to choose the interpreter (>= 3.12).
#
# Why Python >= 3.12: pypet 0.7.0 declares Requires-Python >= 3.12; pip on
# 3.11 silently falls back to pypet 0.6.1 (a different, older code base).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.pypet-venv"
VPY="$VENV/bin/python"

# Pins, all from PyPI. This set was tested together on 2026-11-22 (Python
# 3.12.1): the LIF benchmark in all three modes (serial, LOCK, QUEUE + pool +
# freeze_input) with its results checked, and pypet 0.7.0's own storage,
# parameter, trajectory and environment tests passing. They are exact pins,
# not ranges, because pypet 0.7.0 (its last release) leans on APIs that are
# on their way out: it calls numpy.core.defchararray (deprecated since numpy
# 2.0, to be removed), writes pandas objects through pandas.HDFStore (pandas
# 3.1 already warns of changed defaults) and uses ast.Str (removed in Python
# 3.14). A newer numpy, pandas or tables could break it or change its speed,
# and the figures are only comparable over time if the stack stays the same.
# numba (+ its llvmlite) compiles the model, as in explorer's benchmarks.
PINS=(
  "pypet==0.7.0"
  "numpy==2.5.5"
  "pandas==3.1.1"
  "tables==3.11.1"
  "scipy==1.18.1"
  "numba==0.68.1"
  "llvmlite==0.50.0"
)

pick_python() {
  local c
  for c in "${PYPET_PYTHON:-}" /root/.pyenv/versions/3.12.*/bin/python3.12 \
           python3.12 python3.13; do
    [ -n "$c" ] || continue
    command -v "$c" >/dev/null 2>&1 || continue
    if "$c" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
      command -v "$c"
      return 0
    fi
  done
  echo "setup_pypet.sh: no Python >= 3.12 found (set PYPET_PYTHON)" >&2
  return 1
}

# Exit 0 if the venv's python imports every pinned package at its pinned version.
pins_ok() {
  "$VPY" - "${PINS[@]}" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    if version(name) != want:
        sys.exit(1)
import numba, numpy, pandas, pypet, tables  # noqa: F401  (they import together)
EOF
}

if [ -x "$VPY" ] && "$VPY" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
  if pins_ok; then
    echo "setup_pypet.sh: reusing $VENV" >&2
  else
    echo "setup_pypet.sh: installing the pins into $VENV" >&2
    "$VPY" -m pip install --quiet --disable-pip-version-check "${PINS[@]}" >&2
  fi
else
  PY="$(pick_python)"
  echo "setup_pypet.sh: creating $VENV with $PY" >&2
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VPY" -m pip install --quiet --disable-pip-version-check "${PINS[@]}" >&2
fi

if ! pins_ok; then
  echo "setup_pypet.sh: $VENV does not import the pinned packages" >&2
  exit 1
fi
echo "$VPY"
