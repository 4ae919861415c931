#!/usr/bin/env bash
# Build Hearth's Linux release from this checkout:
#   build/release/hearth-VERSION-linux-ARCH.tar.gz   the frozen folder, unpack anywhere
#   build/release/hearth_VERSION_DEBARCH.deb         per-machine install under /opt/hearth,
#                                                    `hearth`/`hearth-gui` on PATH, desktop entry
#   build/release/hearth-VERSION.cdx.json            CycloneDX SBOM of what was frozen
#   build/release/requirements.lock, audit.json      the shipped packages, and their audit
#   build/release/BUILD-INFO.json                    how it was built and checked: smoke test,
#                                                    audit, portable or not (verify prints it)
#   build/release/SHA256SUMS [+ SHA256SUMS.asc]      sums, and their detached GPG signature
# In that order: the smoke test (packaging/linux/smoke.sh) and the audit run before anything is
# summed or signed, so a build that fails either is never signed.
#
#   packaging/build_llama.sh [--vulkan] [--cuda]      # once: the portable llama.cpp wheel
#   packaging/linux/build.sh [--sign KEY-ID] [--skip-audit] [--llama-wheel FILE]
#                            [--allow-native] [--skip-freeze]
#
# The app is frozen from a fresh release venv (build/venv): the hashed lock
# (requirements/release.lock: CPU torch, every dependency, PyInstaller), the bundled models, the
# app installed as a wheel (not editable, no dev or test extras) and llama.cpp from --llama-wheel
# (default: build/wheels/, from build_llama.sh); nothing else, nothing resolved afresh.
# --sign KEY-ID   sign SHA256SUMS with this gpg key (e.g. from CI secrets, imported first)
# --skip-audit    no vulnerability audit (it needs api.osv.dev); BUILD-INFO.json says so
# --allow-native  accept a llama.cpp wheel compiled for this machine's CPU (default: the one
#                 scripts/_llama.sh installed in .venv): CI and local test builds, never a
#                 release; BUILD-INFO.json says so
# --skip-freeze   reuse build/dist/hearth and build/venv from an earlier run
set -euo pipefail
cd "$(dirname "$0")/../.."
SIGN="" ALLOW_NATIVE=0 FREEZE=1 AUDIT=1 WHEEL=""
while [ $# -gt 0 ]; do
    case "$1" in
        --sign) SIGN=$2; shift 2 ;;
        --allow-native) ALLOW_NATIVE=1; shift ;;
        --skip-freeze) FREEZE=0; shift ;;
        --skip-audit) AUDIT=0; shift ;;
        --llama-wheel) WHEEL=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
DEV=.venv/bin/python   # the tools that are not shipped: sbom.py (cyclonedx), pip-audit
PY=build/venv/bin/python
STARTED=$(date +%s)

if [ $FREEZE = 1 ]; then
    if [ -z "$WHEEL" ]; then
        WHEEL=$(ls build/wheels/llama_cpp_python-*.whl 2>/dev/null | head -1) || true
        if [ -z "$WHEEL" ] && [ $ALLOW_NATIVE = 1 ]; then
            WHEEL=$(cat .venv/hearth-llama 2>/dev/null) || true
        fi
    fi
    [ -f "$WHEEL" ] || { echo "build.sh: no llama.cpp wheel; run packaging/build_llama.sh" \
        "first (or pass --llama-wheel)" >&2; exit 1; }
    echo "llama.cpp wheel: $WHEEL"
    # Everything else, PyInstaller included, comes from requirements/release.lock.
    packaging/release_venv.sh build/venv "$WHEEL" .
    echo "$WHEEL" >build/venv/hearth-llama-wheel
fi

# How llama.cpp was built (flags, AMX handling, patch), beside it for `hearth doctor`.
BUILD_RECORD=$(dirname "$(cat build/venv/hearth-llama-wheel 2>/dev/null || echo .)")/hearth-build.json
if [ -f "$BUILD_RECORD" ]; then
    cp "$BUILD_RECORD" "$("$PY" -c 'import llama_cpp, os; print(os.path.dirname(llama_cpp.__file__))')/"
fi

VERSION=$("$PY" -c "import engine; print(engine.__version__)")
ARCH=$(uname -m)
DEBARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
OUT=build/release
DIST=build/dist/hearth

dispatch=$("$PY" -c "from engine import llama_build; print(llama_build.build_info()['cpu_dispatch'])")
echo "llama.cpp CPU kernels: $dispatch"
if [[ "$dispatch" != runtime* && $ALLOW_NATIVE = 0 ]]; then
    echo "build.sh: this llama.cpp was compiled for this machine's CPU; a release must run on" \
         "any x86-64 CPU. Rebuild llama-cpp-python with portable kernels (docs/deploying.md)" \
         "or pass --allow-native for a local test build." >&2
    exit 1
fi

if [ $FREEZE = 1 ]; then
    # The document embedder ships as its ONNX export, made here by the release venv's torch
    # and checked against it; the frozen app carries no torch (hearth.spec).
    rm -rf build/embedder-onnx
    "$PY" -m engine.documents.onnx_export build/embedder-onnx
    "$PY" -m PyInstaller --noconfirm --clean --log-level WARN --distpath build/dist \
        --workpath build/pyinstaller packaging/hearth.spec
fi
# Only what the app runs on (test code, dev tools or the host's CUDA runtime fail the build).
"$PY" packaging/check_bundle.py "$DIST"
rm -rf "$OUT" && mkdir -p "$OUT"

# Reproducible archive order, owners and times (make_deb.sh uses the same epoch).
EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
export SOURCE_DATE_EPOCH=$EPOCH
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$EPOCH" -C build/dist -c hearth \
    | gzip -n > "$OUT/hearth-$VERSION-linux-$ARCH.tar.gz"

packaging/linux/make_deb.sh "$DIST" "$VERSION" "$OUT/hearth_${VERSION}_${DEBARCH}.deb"

"$DEV" packaging/sbom.py --python "$PY" --embedder-export build/embedder-onnx \
    -o "$OUT/hearth-$VERSION.cdx.json"
if [ $AUDIT = 1 ]; then
    packaging/audit.sh "$PY" "$OUT"
    AUDITED=passed
else
    packaging/audit.sh --lock-only "$PY" "$OUT"
    AUDITED="skipped (--skip-audit)"
fi

MODULES=$(cd "$DIST" && find . -name 'libggml-*.so' -printf '%f\n' | sed 's/^libggml-//; s/\.so$//' \
    | { grep -vE '^(base|cpu.*)$' || true; } | sort | tr '\n' ' ')
RECORDS=build/selftest-records
rm -rf "$RECORDS" && mkdir -p "$RECORDS"
HEARTH_EXPECT_PORTABLE=$((1 - ALLOW_NATIVE)) HEARTH_EXPECT_MODULES="$MODULES" \
    HEARTH_SMOKE_RECORDS="$RECORDS" packaging/linux/smoke.sh "$DIST"

# What was checked, inside what is signed: verify prints it.
"$DEV" - "$OUT/BUILD-INFO.json" <<PY
import glob, json, sys
portable = "$dispatch".startswith("runtime")
info = {
    "version": "$VERSION",
    "commit": "$(git rev-parse HEAD 2>/dev/null || echo unknown)",
    "smoke_test": "passed",
    "audit": "$AUDITED",
    "llama_cpp": "$dispatch",
    "portable": portable,
    "gpu_modules": "$MODULES".split(),
    "release": portable and "$AUDITED" == "passed",
    # llama.cpp's self-test, each way the smoke test ran it: the host, each CPU variant forced
    # (portable builds), emulated older CPUs (QEMU), with the build host's CPU named.
    "llama_cpp_proven": [
        {key: record.get(key) for key in ("run_as", "cpu_variant", "passed", "summary")}
        | {"host_cpu": record["cpu"]["model"], "host_features": record["cpu"]["features"]}
        for record in (json.load(open(p)) for p in sorted(glob.glob("$RECORDS/selftest-*.json")))
    ],
    "dependencies": "requirements/release.lock (hashed)",
}
json.dump(info, open(sys.argv[1], "w"), indent=2)
PY

(cd "$OUT" && sha256sum -- *.tar.gz *.deb *.cdx.json requirements.lock BUILD-INFO.json \
    $(ls audit.json 2>/dev/null) > SHA256SUMS)
if [ -n "$SIGN" ]; then
    gpg --batch --yes --armor --detach-sign --local-user "$SIGN" --output "$OUT/SHA256SUMS.asc" \
        "$OUT/SHA256SUMS"
fi
ls -l "$OUT"
du -sh "$DIST" "$OUT"/*.tar.gz "$OUT"/*.deb
echo "build.sh: done in $(( $(date +%s) - STARTED )) s"
