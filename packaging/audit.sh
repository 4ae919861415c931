#!/usr/bin/env bash
# Audit what a release ships for known vulnerabilities, with pip-audit against the OSV
# database (needs network: CI, or a build machine that can reach api.osv.dev).
#
#   packaging/audit.sh [--lock-only] RELEASE-PYTHON OUT-DIR
#
# Writes OUT-DIR/requirements.lock (every package the app runs on, pinned: the release venv's
# PyInstaller and pip build the bundle but are not in it) and
# OUT-DIR/audit.json. Fails on any known vulnerability that packaging/audit-ignore.txt does
# not waive, and fails if a package could not be checked or the database cannot be reached:
# an audit that did not happen must not look like a clean one.
set -euo pipefail
cd "$(dirname "$0")/.."
LOCK_ONLY=0
[ "${1:-}" = --lock-only ] && { LOCK_ONLY=1; shift; }   # the lock file, no audit
[ $# -eq 2 ] || { echo "usage: packaging/audit.sh [--lock-only] RELEASE-PYTHON OUT-DIR" >&2; exit 2; }
PY=$1 OUT=$2
AUDIT=${PIP_AUDIT:-.venv/bin/pip-audit}
mkdir -p "$OUT"
# Hearth itself is not on PyPI; everything else is what PyInstaller could have collected.
"$PY" packaging/check_bundle.py --lock > "$OUT/requirements.lock"
[ $LOCK_ONLY = 1 ] && exit 0

ignores=()
while read -r id _reason; do
    [ -n "$id" ] && ignores+=(--ignore-vuln "$id")
done < <(grep -vE '^\s*(#|$)' packaging/audit-ignore.txt || true)

"$AUDIT" --vulnerability-service osv --strict --no-deps --disable-pip --progress-spinner off \
    -r "$OUT/requirements.lock" "${ignores[@]}" --format json --output "$OUT/audit.json"
echo "audit: no known vulnerabilities in $(wc -l < "$OUT/requirements.lock") packages" \
     "($OUT/audit.json)"
