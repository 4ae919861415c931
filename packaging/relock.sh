#!/usr/bin/env bash
# Re-resolve what the frozen app carries and write requirements/release.lock: every distribution
# of the release venv, exact version and sha256 of the file pip takes, for Linux x86-64 and
# CPython 3.11 (the release build's platform). The release venv installs from it with
# --require-hashes (packaging/release_venv.sh), so the same commit builds the same bundle on
# any day; tests/packaging/test_release_lock.py fails when pyproject.toml and the lock disagree.
# Not in the lock, on purpose: Hearth itself and llama-cpp-python (built from source here, its
# version pinned by scripts/_llama.sh) and the bundled models (requirements/bundled-models.txt).
#
#   packaging/relock.sh            resolve and write the lock, then build the release from it
#                                  and run its smoke test (packaging/linux/build.sh)
#   packaging/relock.sh --no-build resolve and write only (the build is still the proof)
#
# The lock changes only through this script, on purpose: a reviewer sees each version move.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=1
[ "${1:-}" = --no-build ] && BUILD=0
LOCK=requirements/release.lock
LLAMA_VERSION=$(sed -n 's/^LLAMA_VERSION=\([0-9.]*\).*/\1/p' scripts/_llama.sh)
PYINSTALLER=$(.venv/bin/python -c "from importlib.metadata import version; print(version('pyinstaller'))")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --upgrade pip
echo "llama-cpp-python==$LLAMA_VERSION" >"$work/constraints.txt"
# What a fresh release venv would install today: CPU torch exactly (a looser pin may take a
# CUDA build), Hearth's dependencies, PyInstaller at the version the dev venv freezes with.
"$work/venv/bin/python" -m pip install -q --dry-run --ignore-installed --report "$work/report.json" \
    -c "$work/constraints.txt" "torch==2.13.0" . "pyinstaller==$PYINSTALLER"
"$work/venv/bin/python" - "$work/report.json" "$LOCK" "$LLAMA_VERSION" "$PYINSTALLER" <<'PY'
import json
import sys

report, lock, llama, pyinstaller = sys.argv[1:]
skip = {"hearth", "llama-cpp-python"}
lines = []
for item in json.load(open(report))["install"]:
    meta = item["metadata"]
    name = meta["name"].lower().replace("_", "-")
    if name in skip:
        continue
    info = item["download_info"]
    hashes = info.get("archive_info", {}).get("hashes") or {}
    digest = hashes.get("sha256") or (info.get("archive_info", {}).get("hash") or "").removeprefix("sha256=")
    if not digest:
        sys.exit(f"relock: no sha256 for {name} ({info.get('url')})")
    lines.append(f"{name}=={meta['version']} \\\n    --hash=sha256:{digest}")
header = (
    "# The frozen app's distributions, exact and hashed (Linux x86-64, CPython 3.11).\n"
    "# Written by packaging/relock.sh, never by hand; read by packaging/release_venv.sh with\n"
    "# --require-hashes. Not here: Hearth, llama-cpp-python " + llama + " (built from source) and\n"
    "# the bundled models (requirements/bundled-models.txt). PyInstaller " + pyinstaller + ".\n"
)
open(lock, "w").write(header + "\n".join(sorted(lines)) + "\n")
print(f"relock: {len(lines)} distributions in {lock}")
PY
git --no-pager diff --stat -- "$LOCK" || true
if [ $BUILD = 1 ]; then
    packaging/linux/build.sh --allow-native --skip-audit
fi
