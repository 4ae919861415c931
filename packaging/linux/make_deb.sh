#!/usr/bin/env bash
# Make the .deb from a frozen Hearth folder: per-machine install under /opt/hearth, `hearth` and
# `hearth-gui` on PATH, desktop entry, icon, example policy, copyright file.
#   packaging/linux/make_deb.sh FROZEN_DIR VERSION OUT.deb
#
# Depends is worked out from the frozen binaries, not from the build machine: libc6 at the
# newest GLIBC symbol version any of them needs (on Debian 12 that is what the host's Python
# needs), libstdc++6 likewise when it is not bundled, and the X11 and Wayland libraries Qt's
# platform plugins load. The same folder always gives the same bytes: file times are set to
# SOURCE_DATE_EPOCH (default: the last commit), owners to root, and dpkg-deb sorts the files.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -eq 3 ] || { echo "usage: packaging/linux/make_deb.sh FROZEN_DIR VERSION OUT.deb" >&2; exit 2; }
DIST=$1 VERSION=$2 OUT=$3
DEBARCH=$(dpkg --print-architecture)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
umask 022
STAGE=$(mktemp -d)
chmod 755 "$STAGE"
trap 'rm -rf "$STAGE"' EXIT

mkdir -p "$STAGE/DEBIAN" "$STAGE/opt" "$STAGE/usr/bin" "$STAGE/usr/share/applications" \
    "$STAGE/usr/share/icons/hicolor/scalable/apps" "$STAGE/usr/share/doc/hearth"
cp -a "$DIST" "$STAGE/opt/hearth"
ln -s /opt/hearth/hearth "$STAGE/usr/bin/hearth"
ln -s /opt/hearth/hearth-gui "$STAGE/usr/bin/hearth-gui"
install -m 644 packaging/linux/hearth.desktop "$STAGE/usr/share/applications/hearth.desktop"
install -m 644 packaging/linux/hearth.svg "$STAGE/usr/share/icons/hicolor/scalable/apps/hearth.svg"
install -m 644 packaging/policy.example.json "$STAGE/usr/share/doc/hearth/policy.example.json"
install -m 644 packaging/linux/copyright "$STAGE/usr/share/doc/hearth/copyright"

# The newest symbol version each runtime library is asked for, over every ELF file shipped.
newest() {  # newest PREFIX: e.g. GLIBC -> 2.34
    find "$STAGE/opt/hearth" -type f \( -name '*.so*' -o -perm -u+x \) -print0 \
        | xargs -0 objdump -T 2>/dev/null | grep -oE "\b$1_[0-9]+(\.[0-9]+)+\b" \
        | sed "s/^$1_//" | sort -uV | tail -1 || true  # none found: empty
}
GLIBC=$(newest GLIBC)
[ -n "$GLIBC" ] || { echo "make_deb.sh: no GLIBC symbols found in $DIST" >&2; exit 1; }
# HEARTH_GLIBC_BASELINE (the release job sets 2.35: Ubuntu 22.04, Debian 12 and later): fail
# rather than ship a package that needs a newer C library than promised.
if [ -n "${HEARTH_GLIBC_BASELINE:-}" ] &&
    [ "$(printf '%s\n%s\n' "$GLIBC" "$HEARTH_GLIBC_BASELINE" | sort -V | tail -1)" != "$HEARTH_GLIBC_BASELINE" ]; then
    echo "make_deb.sh: the frozen binaries need glibc $GLIBC, newer than the baseline" \
        "$HEARTH_GLIBC_BASELINE: build on an older system (the release job uses Ubuntu 22.04)" >&2
    find "$STAGE/opt/hearth" -type f \( -name '*.so*' -o -perm -u+x \) -print0 |
        while IFS= read -r -d '' f; do
            if objdump -T "$f" 2>/dev/null | grep -q "GLIBC_$GLIBC\b"; then
                echo "  needs glibc $GLIBC: ${f#"$STAGE"/opt/hearth/}" >&2
            fi
        done
    exit 1
fi
DEPENDS="libc6 (>= $GLIBC)"
if ! find "$STAGE/opt/hearth" -name 'libstdc++.so*' | grep -q .; then
    CXX=$(newest GLIBCXX)
    # libstdc++ symbol versions by the GCC release that introduced them.
    case "$CXX" in
        3.4.3[2-9]*) DEPENDS+=", libstdc++6 (>= 14)" ;;
        3.4.31) DEPENDS+=", libstdc++6 (>= 13)" ;;
        3.4.30) DEPENDS+=", libstdc++6 (>= 12)" ;;
        3.4.29) DEPENDS+=", libstdc++6 (>= 11)" ;;
        "") ;;
        *) DEPENDS+=", libstdc++6 (>= 10)" ;;
    esac
fi
# Qt's xcb and wayland platform plugins, and what Qt itself dlopens.
DEPENDS+=", libegl1, libgl1, libfontconfig1, libfreetype6, libdbus-1-3, libxkbcommon0"
DEPENDS+=", libxcb-cursor0, libxkbcommon-x11-0, libxcb-icccm4, libxcb-keysyms1, libxcb-shape0"
DEPENDS+=", libxcb-render-util0, libxcb-image0, libwayland-client0, libwayland-cursor0"
DEPENDS+=", libwayland-egl1"
# ggml loads its Vulkan module only where the Vulkan loader is; without it the module is
# skipped and the CPU (or CUDA) is used, so the loader is recommended, not required.
RECOMMENDS=""
if find "$STAGE/opt/hearth" -name 'libggml-vulkan.so' | grep -q .; then
    RECOMMENDS="Recommends: libvulkan1"
fi

find "$STAGE" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
SIZE=$(du -sk --apparent-size "$STAGE" | cut -f1)
cat > "$STAGE/DEBIAN/control" <<CONTROL
Package: hearth
Version: $VERSION
Architecture: $DEBARCH
Maintainer: Hearth developers <hearth@example.invalid>
Installed-Size: $SIZE
Depends: $DEPENDS${RECOMMENDS:+
$RECOMMENDS}
Section: utils
Priority: optional
Homepage: https://example.invalid/hearth
Description: private AI on your own machine
 Chat with open-weight language models and ask questions over your own
 documents, with sources. Runs offline; nothing leaves the machine. Ships a
 small chat model and an embedding model. Machine policy: /etc/hearth/policy.json.
CONTROL
touch -h -d "@$SOURCE_DATE_EPOCH" "$STAGE/DEBIAN/control" "$STAGE/DEBIAN"
dpkg-deb --build --root-owner-group -Zgzip "$STAGE" "$OUT" >/dev/null
echo "$OUT: Depends: $DEPENDS"
