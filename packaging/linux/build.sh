#!/usr/bin/env bash
# Build Hearth's Linux release from this checkout:
#   build/release/hearth-VERSION-linux-ARCH.tar.gz   the frozen folder, unpack anywhere
#   build/release/hearth_VERSION_DEBARCH.deb         per-machine install under /opt/hearth,
#                                                    `hearth`/`hearth-gui` on PATH, desktop entry
#   build/release/hearth-VERSION.cdx.json            CycloneDX SBOM of what was frozen
#   build/release/requirements.lock, audit.json      the shipped packages, and their audit
#   build/release/SHA256SUMS [+ SHA256SUMS.asc]      sums, and their detached GPG signature
# then runs packaging/linux/smoke.sh on the frozen folder.
#
#   packaging/build_llama.sh                           # once: the portable llama.cpp wheel
#   packaging/linux/build.sh [--sign KEY-ID] [--skip-audit] [--llama-wheel FILE]
#                            [--allow-native] [--skip-freeze]
#
# The app is frozen from a fresh release venv (build/venv): the app installed as a wheel, not
# editable, with llama.cpp from --llama-wheel (default: build/wheels/, from build_llama.sh).
# --sign KEY-ID   sign SHA256SUMS with this gpg key (e.g. from CI secrets, imported first)
# --skip-audit    no vulnerability audit (it needs api.osv.dev); the release folder says so
# --allow-native  freeze the development venv (.venv) as it is, llama.cpp compiled for this
#                 machine's CPU included: a local test build, never a release
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

if [ $ALLOW_NATIVE = 1 ]; then
    PY=$DEV
else
    PY=build/venv/bin/python
    if [ $FREEZE = 1 ]; then
        if [ -z "$WHEEL" ]; then
            WHEEL=$(ls build/wheels/llama_cpp_python-*.whl 2>/dev/null | head -1) || true
        fi
        [ -f "$WHEEL" ] || { echo "build.sh: no portable llama.cpp wheel; run" \
            "packaging/build_llama.sh first (or pass --llama-wheel)" >&2; exit 1; }
        PYINSTALLER=$("$DEV" -c "from importlib.metadata import version; print(version('pyinstaller'))")
        packaging/release_venv.sh build/venv "$WHEEL" . "pyinstaller==$PYINSTALLER"
    fi
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
    "$PY" -m PyInstaller --noconfirm --clean --log-level WARN --distpath build/dist \
        --workpath build/pyinstaller packaging/hearth.spec
fi
rm -rf "$OUT" && mkdir -p "$OUT"

# Reproducible archive order, owners and times.
EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$EPOCH" -C build/dist \
    -czf "$OUT/hearth-$VERSION-linux-$ARCH.tar.gz" hearth

STAGE=build/deb
rm -rf "$STAGE" && mkdir -p "$STAGE/DEBIAN" "$STAGE/opt" "$STAGE/usr/bin" \
    "$STAGE/usr/share/applications" "$STAGE/usr/share/icons/hicolor/scalable/apps" \
    "$STAGE/usr/share/doc/hearth"
cp -a "$DIST" "$STAGE/opt/hearth"
ln -s /opt/hearth/hearth "$STAGE/usr/bin/hearth"
ln -s /opt/hearth/hearth-gui "$STAGE/usr/bin/hearth-gui"
cp packaging/linux/hearth.desktop "$STAGE/usr/share/applications/hearth.desktop"
cp packaging/linux/hearth.svg "$STAGE/usr/share/icons/hicolor/scalable/apps/hearth.svg"
cp packaging/policy.example.json "$STAGE/usr/share/doc/hearth/policy.example.json"
SIZE=$(du -sk "$STAGE" | cut -f1)
# The frozen binaries need at least the C library they were built against.
GLIBC=$(ldd --version | head -1 | grep -oE '[0-9]+\.[0-9]+$')
cat > "$STAGE/DEBIAN/control" <<CONTROL
Package: hearth
Version: $VERSION
Architecture: $DEBARCH
Maintainer: Hearth developers <hearth@example.invalid>
Installed-Size: $SIZE
Depends: libc6 (>= $GLIBC), libegl1, libgl1, libfontconfig1, libxkbcommon0, libdbus-1-3, libxcb-cursor0, libxkbcommon-x11-0, libxcb-icccm4, libxcb-keysyms1, libxcb-shape0, libxcb-render-util0, libxcb-image0
Section: utils
Priority: optional
Homepage: https://example.invalid/hearth
Description: private AI on your own machine
 Chat with open-weight language models and ask questions over your own
 documents, with sources. Runs offline; nothing leaves the machine. Ships a
 small chat model and an embedding model. Machine policy: /etc/hearth/policy.json.
CONTROL
fakeroot dpkg-deb --build --root-owner-group -Zgzip "$STAGE" "$OUT/hearth_${VERSION}_${DEBARCH}.deb" >/dev/null

"$DEV" packaging/sbom.py --python "$PY" -o "$OUT/hearth-$VERSION.cdx.json"
if [ $AUDIT = 1 ]; then
    packaging/audit.sh "$PY" "$OUT"
else
    packaging/audit.sh --lock-only "$PY" "$OUT"
    echo "not audited: built with --skip-audit" > "$OUT/AUDIT-SKIPPED.txt"
fi

(cd "$OUT" && sha256sum -- *.tar.gz *.deb *.cdx.json requirements.lock \
    $(ls audit.json AUDIT-SKIPPED.txt 2>/dev/null) > SHA256SUMS)
if [ -n "$SIGN" ]; then
    gpg --batch --yes --armor --detach-sign --local-user "$SIGN" --output "$OUT/SHA256SUMS.asc" \
        "$OUT/SHA256SUMS"
fi

HEARTH_EXPECT_PORTABLE=$((1 - ALLOW_NATIVE)) packaging/linux/smoke.sh "$DIST"
ls -l "$OUT"
