# llama.cpp for this machine: which backend to build, its toolchain, and a wheel per backend.
# Sourced by scripts/_install.sh (after set -euo pipefail and cd to the repository root).
#
# HEARTH_LLAMA_BACKEND=auto|cpu|cuda|vulkan|metal picks the backend (default auto: macOS on
# Apple silicon -> metal; an NVIDIA driver and a CUDA toolkit -> cuda; a Vulkan GPU -> vulkan;
# else cpu). HEARTH_CUDA_ARCH sets CMAKE_CUDA_ARCHITECTURES (default: the cards present).
#
# Each backend's wheel is built once into its own folder of ~/.cache/hearth/llama-wheels,
# named by backend, version, build flags, compiler flags, any source patch and this CPU's
# features (the build is -march=native), with pip's own cache off for the build: pip's
# cache is keyed by version alone, so a cached CPU wheel was reused for a "GPU" build. The
# installed build is recorded in .venv/hearth-llama; a different choice reinstalls. The
# wheel's folder holds hearth-build.json (how it was built), copied beside the installed
# llama_cpp for `hearth doctor`.
#
# AMX (Sapphire Rapids and later Xeons): llama.cpp's AMX kernel faults on its first decode
# (llama.cpp issue #20824). On a CPU with AMX the source is patched before the build
# (packaging/patches/llama-amx-tile-config.patch); HEARTH_LLAMA_AMX=off builds without AMX
# instead (-mno-amx-*). verify_llama, the set-up's last step, falls back to that by itself
# when the patched build fails its self-test, and a wheel that failed is never used again.

LLAMA_VERSION=0.3.36 # the release whose vendored llama.cpp we build and measure
LLAMA_WHEELS=${HEARTH_LLAMA_WHEELS:-${XDG_CACHE_HOME:-$HOME/.cache}/hearth/llama-wheels}

# Vulkan headers newer than Debian 12's (1.3.239 lacks vk::LayerSettingEXT, which ggml-vulkan
# uses): Debian 13's libvulkan-dev, unpacked (not installed), checked by hash.
VULKAN_HEADERS_DEB=libvulkan-dev_1.4.309.0-1_amd64.deb
VULKAN_HEADERS_URL=https://deb.debian.org/debian/pool/main/v/vulkan-loader/$VULKAN_HEADERS_DEB
VULKAN_HEADERS_SHA256=8d329d465e16168afff58b1bd0dd6db46aac2cc3f56054a481b25a04e90b345a

say() { echo "hearth: $*" >&2; }

# debian_packages "PACKAGES": install those dpkg does not have (as root, with apt); else say so.
debian_packages() {
    local missing=() package
    for package in $1; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing ${missing[*]}"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        say "missing ${missing[*]}; install them with your package manager (Debian/Ubuntu names)"
        return 1
    fi
}

cuda_nvcc() {
    command -v nvcc 2>/dev/null && return 0
    local candidate
    for candidate in "${CUDA_HOME:-/nonexistent}/bin/nvcc" /usr/local/cuda/bin/nvcc /usr/local/cuda-*/bin/nvcc; do
        [ -x "$candidate" ] && { echo "$candidate"; return 0; }
    done
    return 1
}

nvidia_driver() { [ -e /proc/driver/nvidia/version ] || nvidia-smi -L >/dev/null 2>&1; }

# A Vulkan device that is a real GPU (not Mesa's software one), as vulkaninfo lists them.
vulkan_gpu() {
    command -v vulkaninfo >/dev/null || return 1
    vulkaninfo --summary 2>/dev/null | grep -Eq "deviceType *= *PHYSICAL_DEVICE_TYPE_(DISCRETE|INTEGRATED)_GPU"
}

# Prints the backend to build; says on stderr why.
llama_backend() {
    local wanted=${HEARTH_LLAMA_BACKEND:-auto}
    case "$wanted" in
    cpu | cuda | vulkan | metal)
        say "llama.cpp backend: $wanted (HEARTH_LLAMA_BACKEND)"
        echo "$wanted"
        return 0
        ;;
    auto) ;;
    *)
        say "HEARTH_LLAMA_BACKEND=$wanted is not one of auto, cpu, cuda, vulkan, metal"
        return 1
        ;;
    esac
    if [ "$(uname -s)" = Darwin ] && [ "$(uname -m)" = arm64 ]; then
        say "llama.cpp backend: metal (Apple silicon)"
        echo metal
    elif nvidia_driver && cuda_nvcc >/dev/null; then
        say "llama.cpp backend: cuda (an NVIDIA driver, and nvcc at $(cuda_nvcc))"
        echo cuda
    elif nvidia_driver; then
        say "llama.cpp backend: cpu. An NVIDIA driver is here but no CUDA toolkit (nvcc): install" \
            "it and run this again, or HEARTH_LLAMA_BACKEND=vulkan $0 to use the card through Vulkan"
        echo cpu
    elif vulkan_gpu; then
        say "llama.cpp backend: vulkan (vulkaninfo lists a GPU)"
        echo vulkan
    else
        say "llama.cpp backend: cpu (no NVIDIA driver, no Vulkan GPU; HEARTH_LLAMA_BACKEND overrides)"
        echo cpu
    fi
}

# Debian packages and headers the Vulkan build needs; prints the headers' include folder.
vulkan_toolchain() {
    # The loader to link, the shader compiler, SPIR-V headers, and Mesa's drivers (lavapipe,
    # the software device the tests run on; a real GPU's driver where there is one).
    debian_packages "libvulkan-dev glslc spirv-headers mesa-vulkan-drivers" || return 1
    local dir="$LLAMA_WHEELS/vulkan-headers-1.4.309"
    if [ ! -f "$dir/usr/include/vulkan/vulkan.hpp" ]; then
        mkdir -p "$LLAMA_WHEELS"
        local deb="$LLAMA_WHEELS/$VULKAN_HEADERS_DEB"
        say "fetching Vulkan headers 1.4.309 (Debian's libvulkan-dev, checked by hash)"
        .venv/bin/python - "$VULKAN_HEADERS_URL" "$deb" "$VULKAN_HEADERS_SHA256" <<'EOF'
import hashlib, sys, urllib.request
url, out, want = sys.argv[1:]
data = urllib.request.urlopen(url, timeout=120).read()
got = hashlib.sha256(data).hexdigest()
if got != want:
    sys.exit(f"hearth: {url} has sha256 {got}, expected {want}; not used")
open(out, "wb").write(data)
EOF
        [ -f "$deb" ] || return 1
        rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
        dpkg-deb -x "$deb" "$dir.tmp" || return 1
        rm -rf "$dir" && mv "$dir.tmp" "$dir" && rm -f "$deb"
    fi
    echo "$dir/usr/include"
}

# The CMake flags for a backend, one per line.
llama_cmake_args() {
    case "$1" in
    cpu) ;;
    metal) echo "-DGGML_METAL=on" ;;
    cuda)
        local nvcc
        nvcc=$(cuda_nvcc) || { say "no nvcc (CUDA toolkit) found"; return 1; }
        echo "-DGGML_CUDA=on"
        echo "-DCMAKE_CUDA_COMPILER=$nvcc"
        if [ -n "${HEARTH_CUDA_ARCH:-}" ]; then
            echo "-DCMAKE_CUDA_ARCHITECTURES=$HEARTH_CUDA_ARCH"
        elif nvidia-smi -L >/dev/null 2>&1; then
            echo "-DCMAKE_CUDA_ARCHITECTURES=native"
        fi
        ;;
    vulkan)
        local include
        include=$(vulkan_toolchain) || return 1
        echo "-DGGML_VULKAN=on"
        echo "-DVulkan_INCLUDE_DIR=$include"
        ;;
    esac
}

AMX_PATCH=packaging/patches/llama-amx-tile-config.patch
AMX_UPSTREAM="llama.cpp issue #20824, pull request #26954"

cpu_flags() { grep -m1 -E '^(flags|Features)' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | tr ' ' '\n' | sort | tr '\n' ' '; }
cpu_has_amx() { cpu_flags | grep -qw amx_int8 && cpu_flags | grep -qw amx_tile; }

# The AMX handling for this machine's build: none (no AMX here), patched, or off.
llama_amx_mode() {
    local wanted=${HEARTH_LLAMA_AMX:-auto}
    case "$wanted" in
    off) echo off ;;
    auto) if cpu_has_amx; then echo patched; else echo none; fi ;;
    *) say "HEARTH_LLAMA_AMX=$wanted is not one of auto, off"; return 1 ;;
    esac
}

# llama_wheel BACKEND [AMX_MODE]: the path of that backend's wheel, built if it is not there
# yet. A folder whose wheel failed its self-test (marked selftest-failed) is never used.
llama_wheel() {
    local backend=$1 amx=${2:-} args key dir cflags="" patch="" extra=""
    [ -n "$amx" ] || amx=$(llama_amx_mode) || return 1
    args=$(llama_cmake_args "$backend") || return 1
    args=$(echo $args)
    case "$amx" in
    patched) patch=$AMX_PATCH ;;
    off) cflags="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" ;;
    esac
    # A build with nothing extra keeps the key it always had; flags and a patch are added
    # where they change what is built, and the CPU it was compiled for (-march=native).
    if [ -n "$cflags$patch" ]; then
        extra="|$cflags|${patch:+$(sha256sum "$patch" | cut -c1-16)}"
    fi
    key=$(printf '%s|%s|%s%s' "$LLAMA_VERSION" "$args" "$(uname -sm)" "$extra" | sha256sum | cut -c1-12)
    key=$key-$(cpu_flags | sha256sum | cut -c1-6)
    dir="$LLAMA_WHEELS/$backend-$LLAMA_VERSION-$key"
    if [ -e "$dir/selftest-failed" ]; then
        say "the llama.cpp build in $dir failed its self-test on this machine before (its" \
            "record is there), so it is not used again; remove that folder to build it afresh"
        return 1
    fi
    if ! ls "$dir"/llama_cpp_python-*.whl >/dev/null 2>&1; then
        say "building llama-cpp-python $LLAMA_VERSION for $backend (${args:-default flags}${cflags:+; CFLAGS $cflags}${patch:+; patched: $(basename "$patch"), for $AMX_UPSTREAM});" \
            "several minutes, once: kept in $dir"
        rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
        local source="llama-cpp-python==$LLAMA_VERSION"
        if [ -n "$patch" ]; then
            source=$(llama_patched_source "$dir.tmp" "$patch") || return 1
        fi
        CMAKE_ARGS="$args" CFLAGS="${CFLAGS:-} $cflags" CXXFLAGS="${CXXFLAGS:-} $cflags" \
            .venv/bin/python -m pip wheel -q --no-cache-dir --no-deps \
            --no-binary llama-cpp-python -w "$dir.tmp" "$source" >&2 || return 1
        ls "$dir.tmp"/llama_cpp_python-*.whl >/dev/null || return 1
        rm -rf "$dir.tmp/src"
        .venv/bin/python - "$dir.tmp/hearth-build.json" "$backend" "$args" "$cflags" "$amx" \
            "${patch:+$(basename "$patch")}" "$AMX_UPSTREAM" <<'PYTHON'
import json, sys, time
out, backend, args, cflags, amx, patch, upstream = sys.argv[1:]
json.dump({"backend": backend, "cmake_args": args, "cflags": cflags, "amx": amx,
           "patch": patch or None, "patch_answers": upstream if patch else None,
           "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
          open(out, "w"), indent=2)
PYTHON
        rm -rf "$dir" && mv "$dir.tmp" "$dir"
    fi
    ls "$dir"/llama_cpp_python-*.whl | head -1
}

# llama_patched_source DIR PATCH: llama-cpp-python's sdist unpacked in DIR/src with PATCH
# applied; prints the source folder.
llama_patched_source() {
    local dir=$1 patch=$2 tree
    command -v patch >/dev/null || debian_packages patch || return 1
    mkdir -p "$dir/src"
    .venv/bin/python -m pip download -q --no-deps --no-binary :all: -d "$dir/src" \
        "llama-cpp-python==$LLAMA_VERSION" >&2 || return 1
    tar -xzf "$dir/src"/llama_cpp_python-*.tar.gz -C "$dir/src" || return 1
    tree=$(ls -d "$dir/src"/llama_cpp_python-*/ | head -1)
    patch -s -p1 -d "$tree" <"$patch" >&2 || { say "$(basename "$patch") does not apply"; return 1; }
    echo "$tree"
}

# install_llama [AMX_MODE]: build (once) and install the chosen backend's wheel into .venv,
# with its hearth-build.json beside the installed llama_cpp.
install_llama() {
    local backend wheel record=.venv/hearth-llama amx=${1:-}
    backend=$(llama_backend)
    if ! wheel=$(llama_wheel "$backend" "$amx"); then
        [ "$backend" = cpu ] && return 1
        say "building llama.cpp for $backend FAILED (its output is above); installing the CPU" \
            "build so Hearth runs. HEARTH_LLAMA_BACKEND=cpu skips the $backend attempt next time."
        backend=cpu
        wheel=$(llama_wheel cpu "$amx") || return 1
    fi
    if [ "$(cat "$record" 2>/dev/null)" != "$wheel" ] ||
        ! .venv/bin/python -c "import llama_cpp" 2>/dev/null; then
        .venv/bin/python -m pip install -q --no-deps --force-reinstall "$wheel"
        echo "$wheel" >"$record"
    fi
    local info
    info=$(dirname "$wheel")/hearth-build.json
    [ -f "$info" ] || printf '{"backend": "%s", "amx": "none", "patch": null}\n' "$backend" >"$info"
    cp "$info" "$(.venv/bin/python -c 'import llama_cpp, os; print(os.path.dirname(llama_cpp.__file__))')/"
    if [ "$backend" != cpu ]; then
        .venv/bin/python -c "import llama_cpp, sys; sys.exit(0 if llama_cpp.llama_supports_gpu_offload() else 1)" ||
            { say "the $backend build of llama.cpp reports no GPU offload"; return 1; }
    fi
}

# verify_llama: the set-up's last step (Hearth must be installed). The installed build answers
# its self-test (engine/runtime/selftest.py) or the set-up stops: a patched AMX build that
# fails is replaced by one without AMX, tested again; any other failure marks the wheel so it
# is never used again, and says what to do. A build that passed once is not tested again.
verify_llama() {
    local wheel dir
    if .venv/bin/python -c "import sys; from engine import llama_build as b; r = b.read_selftest(); sys.exit(0 if r and r['current'] and r['passed'] else 1)" 2>/dev/null; then
        return 0
    fi
    say "self-test: the bundled model answers on this llama.cpp build, fast and plain kernels agree"
    .venv/bin/python -m engine.runtime.selftest --record && return 0
    wheel=$(cat .venv/hearth-llama)
    dir=$(dirname "$wheel")
    cp "$(.venv/bin/python -c 'from engine import llama_build as b; print(b.selftest_record_path())')" \
        "$dir/selftest-failed" 2>/dev/null || touch "$dir/selftest-failed"
    if grep -q '"amx": "patched"' "$dir/hearth-build.json" 2>/dev/null; then
        say "llama.cpp with its AMX kernels (patched for $AMX_UPSTREAM) failed the self-test" \
            "above on this CPU; building it without AMX instead (slower reading of prompts," \
            "the same answers)"
        install_llama off && .venv/bin/python -m engine.runtime.selftest --record && return 0
        wheel=$(cat .venv/hearth-llama)
        dir=$(dirname "$wheel")
        touch "$dir/selftest-failed"
    fi
    say "llama.cpp as built for this machine failed its self-test (above), so the set-up stops" \
        "here rather than start Hearth on a build that cannot answer. The build is set aside" \
        "($dir, with its record) and never used again; 'hearth doctor' names this CPU's" \
        "features. HEARTH_LLAMA_BACKEND=cpu or HEARTH_LLAMA_AMX=off, then this command again," \
        "tries another build."
    return 1
}

# install_llama_beside BACKEND: that backend's build in its own folder (not .venv's), for a
# run with PYTHONPATH=folder; prints the folder.
install_llama_beside() {
    local wheel dir=.venv/llama-$1
    wheel=$(llama_wheel "$1")
    if [ "$(cat "$dir/hearth-llama" 2>/dev/null)" != "$wheel" ]; then
        rm -rf "$dir"
        .venv/bin/python -m pip install -q --no-deps --target "$dir" "$wheel" >&2
        echo "$wheel" >"$dir/hearth-llama"
    fi
    echo "$dir"
}
