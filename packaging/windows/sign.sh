#!/usr/bin/env bash
# Authenticode-sign Windows files from Linux or macOS with osslsigncode, then verify each one.
# (On Windows, build.ps1 does the same with signtool.)
#
#   packaging/windows/sign.sh --pkcs12 CERT.p12 [--password-file FILE] [--timestamp URL]
#                             [--ca CA.pem] FILE-OR-FOLDER...
#
# A folder is searched for every .exe, .dll and .pyd in it (the frozen app's _internal holds
# hundreds: Python, Qt, torch, llama.cpp). Each file is signed with SHA-256, the product name
# and URL, and an RFC 3161 timestamp when --timestamp is given (a release needs one, so that
# signatures outlive the certificate). Each signed file is then checked with
# `osslsigncode verify`, against --ca when given (a private or test CA), else the system's
# roots. The password comes from a file or $SIGN_PASSWORD (CI secrets), never the command line.
set -euo pipefail
P12="" PASSFILE="" TSA="" CA=""
NAME=${SIGN_NAME:-Hearth} URL=${SIGN_URL:-https://example.invalid/hearth}
while [ $# -gt 0 ]; do
    case "$1" in
        --pkcs12) P12=$2; shift 2 ;;
        --password-file) PASSFILE=$2; shift 2 ;;
        --timestamp) TSA=$2; shift 2 ;;
        --ca) CA=$2; shift 2 ;;
        --) shift; break ;;
        -*) echo "sign.sh: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
[ -n "$P12" ] && [ $# -gt 0 ] || { echo "usage: sign.sh --pkcs12 CERT.p12 [options] FILE-OR-FOLDER..." >&2; exit 2; }
command -v osslsigncode >/dev/null || { echo "sign.sh: osslsigncode is not installed" >&2; exit 2; }

if [ -z "$PASSFILE" ]; then
    PASSFILE=$(mktemp); trap 'rm -f "$PASSFILE"' EXIT
    printf '%s' "${SIGN_PASSWORD:-}" > "$PASSFILE"
fi

files=()
for target in "$@"; do
    if [ -d "$target" ]; then
        while IFS= read -r -d '' f; do files+=("$f"); done < <(
            find "$target" -type f \( -iname '*.exe' -o -iname '*.dll' -o -iname '*.pyd' \) -print0 | sort -z)
    elif [ -f "$target" ]; then
        files+=("$target")
    else
        echo "sign.sh: no such file or folder: $target" >&2; exit 2
    fi
done
[ ${#files[@]} -gt 0 ] || { echo "sign.sh: nothing to sign" >&2; exit 2; }

sign_args=(-pkcs12 "$P12" -readpass "$PASSFILE" -h sha256 -n "$NAME" -i "$URL")
[ -n "$TSA" ] && sign_args+=(-ts "$TSA")
verify_args=()
[ -n "$CA" ] && verify_args+=(-CAfile "$CA")

for f in "${files[@]}"; do
    tmp="$f.signing"
    # Re-signing replaces an old signature (-nest would add a second one instead).
    if ! osslsigncode sign "${sign_args[@]}" -in "$f" -out "$tmp" >"$tmp.log" 2>&1; then
        cat "$tmp.log" >&2; rm -f "$tmp" "$tmp.log"
        echo "sign.sh: could not sign $f" >&2; exit 1
    fi
    rm -f "$tmp.log"
    mv -f "$tmp" "$f"
    if ! out=$(osslsigncode verify "${verify_args[@]}" -in "$f" 2>&1); then
        echo "$out" >&2
        echo "sign.sh: the signature on $f does not verify" >&2; exit 1
    fi
    echo "signed and verified: $f"
done
