#!/usr/bin/env bash
# Build, sign, notarize and package Hearth for macOS (Apple silicon, Metal). Written with care,
# NOT run here (no Mac); the CI workflow runs it on macos-14.
#
#   packaging/macos/build.sh [--identity "Developer ID Application: NAME (TEAMID)"]
#                            [--notary-profile PROFILE]
#
# --identity         sign every binary and Hearth.app with hardened runtime and
#                    entitlements.plist, and sign the DMG
# --notary-profile   a `xcrun notarytool store-credentials` profile: submit the app and the DMG
#                    to Apple's notary service, wait, and staple the tickets
# Output in build/release: Hearth-VERSION-macos-arm64.dmg and SHA256SUMS.
set -euo pipefail
cd "$(dirname "$0")/../.."
IDENTITY="" PROFILE=""
while [ $# -gt 0 ]; do
    case "$1" in
        --identity) IDENTITY=$2; shift 2 ;;
        --notary-profile) PROFILE=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
[ -z "$PROFILE" ] || [ -n "$IDENTITY" ] || { echo "notarizing needs --identity" >&2; exit 2; }

# A clean release venv: the app as a wheel, llama.cpp built for Metal with GGML_NATIVE off.
PY=build/venv/bin/python
LLAMA=$(sed -n 's/.*"llama-cpp-python>=\([^"]*\)".*/\1/p' pyproject.toml)
CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_METAL=ON" packaging/release_venv.sh build/venv \
    --no-cache-dir --no-binary llama-cpp-python "llama-cpp-python==$LLAMA" ".[packaging]"
VERSION=$("$PY" -c "import engine; print(engine.__version__)")
"$PY" -c "import llama_cpp, sys; sys.exit(0 if llama_cpp.llama_supports_gpu_offload() else 'no Metal')"

"$PY" packaging/make_icons.py build/icons
export HEARTH_ICON_DIR=$PWD/build/icons
[ -n "$IDENTITY" ] && export HEARTH_CODESIGN_IDENTITY=$IDENTITY
"$PY" -m engine.documents.onnx_export build/embedder-onnx   # shipped instead of torch
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN --distpath build/dist \
    --workpath build/pyinstaller packaging/hearth.spec
APP=build/dist/Hearth.app

if [ -n "$IDENTITY" ]; then
    # PyInstaller signed each binary and the bundle; check the whole tree, strictly.
    codesign --verify --deep --strict --verbose=2 "$APP"
    codesign --display --verbose=2 "$APP" 2>&1 | grep -q "flags=.*runtime" \
        || { echo "hardened runtime is not on" >&2; exit 1; }
fi

notarize() {  # notarize FILE: submit, wait for Apple's verdict, fail on anything but Accepted
    xcrun notarytool submit "$1" --keychain-profile "$PROFILE" --wait --output-format json \
        | tee build/notary.json
    grep -q '"status" *: *"Accepted"' build/notary.json
}
if [ -n "$PROFILE" ]; then
    ditto -c -k --keepParent "$APP" build/Hearth.zip
    notarize build/Hearth.zip
    xcrun stapler staple "$APP"
    spctl --assess --type execute --verbose=2 "$APP"
fi

# Smoke test the frozen app: version, doctor, an offline answer with the bundled model.
"$APP/Contents/MacOS/hearth" --version
"$APP/Contents/MacOS/hearth" doctor --no-hash
"$APP/Contents/MacOS/hearth" ask --max-tokens 8 "Say hello."

OUT=build/release
rm -rf "$OUT" build/dmg && mkdir -p "$OUT" build/dmg
cp -R "$APP" build/dmg/
ln -s /Applications build/dmg/Applications
DMG="$OUT/Hearth-$VERSION-macos-$(uname -m).dmg"
hdiutil create -volname "Hearth $VERSION" -srcfolder build/dmg -ov -format UDZO "$DMG"
if [ -n "$IDENTITY" ]; then
    codesign --sign "$IDENTITY" --timestamp "$DMG"
fi
if [ -n "$PROFILE" ]; then
    notarize "$DMG"
    xcrun stapler staple "$DMG"
    spctl --assess --type open --context context:primary-signature --verbose=2 "$DMG"
fi
"$PY" packaging/sbom.py --python "$PY" -o "$OUT/hearth-$VERSION.cdx.json"
PIP_AUDIT=build/venv/bin/pip-audit packaging/audit.sh "$PY" "$OUT"
(cd "$OUT" && shasum -a 256 -- *.dmg *.cdx.json requirements.lock audit.json > SHA256SUMS)
ls -l "$OUT"
