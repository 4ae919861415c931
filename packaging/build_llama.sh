#!/usr/bin/env bash
# Build the llama-cpp-python wheel a release ships: portable CPU kernels chosen at run time,
# never this machine's -march=native.
#
#   packaging/build_llama.sh [--cuda] [--vulkan] [--out DIR]  -> DIR/llama_cpp_python-*.whl
#
# x86-64 and Linux arm64: ggml's CPU backend is built once per instruction-set level
# (GGML_CPU_ALL_VARIANTS: x64, sse42, sandybridge, haswell, skylakex, icelake, alderlake, zen4,
# sapphirerapids, ...) as loadable modules (GGML_BACKEND_DL). At start, engine/llama_build.py
# asks ggml to load them from llama_cpp/lib and ggml keeps the best one the CPU supports.
# --cuda adds the CUDA backend as one more module: it loads where an NVIDIA driver is present
# and is skipped elsewhere, so the same build runs on machines without a GPU. --vulkan adds the
# Vulkan backend the same way, for AMD and Intel GPUs (and NVIDIA ones without CUDA); it needs
# the Vulkan headers and glslc that scripts/_llama.sh provides on Debian.
# macOS: Metal, with GGML_NATIVE off (llama-cpp-python turns Metal on for Apple itself).
#
# The version is the one installed in the build venv, so the release ships what the tests ran.
# The AMX patch is applied to the source (below); DIR/hearth-build.json says how it was built,
# and build.sh puts it beside the frozen llama_cpp for `hearth doctor`.
# --no-cache-dir: pip's wheel cache is keyed by version, not by CMAKE_ARGS, and would hand
# back the native build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON_VENV:-.venv}/bin/python
OUT=build/wheels CUDA=0 VULKAN=0
while [ $# -gt 0 ]; do
    case "$1" in
        --cuda) CUDA=1; shift ;;
        --vulkan) VULKAN=1; shift ;;
        --out) OUT=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
VERSION=$("$PY" -c "from importlib.metadata import version; print(version('llama-cpp-python'))")

args=(-DGGML_NATIVE=OFF)
case "$(uname -s)" in
    Darwin) ;;
    *)
        # The variant modules go beside libggml in llama_cpp/lib (ggml installs them to
        # CMAKE_INSTALL_BINDIR, which would otherwise be a top-level bin/ in site-packages).
        args+=(-DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON -DCMAKE_INSTALL_BINDIR=llama_cpp/lib)
        if [ $CUDA = 1 ]; then
            # Turing to Hopper, plus PTX for newer GPUs to JIT.
            args+=(-DGGML_CUDA=ON "-DCMAKE_CUDA_ARCHITECTURES=75-real;80-real;86-real;89-real;90-real;90-virtual")
            command -v nvcc >/dev/null || args+=("-DCMAKE_CUDA_COMPILER=$(source scripts/_llama.sh && cuda_nvcc)")
        fi
        if [ $VULKAN = 1 ]; then
            args+=(-DGGML_VULKAN=ON "-DVulkan_INCLUDE_DIR=$(source scripts/_llama.sh && vulkan_toolchain)")
        fi
        ;;
esac

mkdir -p "$OUT"
rm -f "$OUT"/llama_cpp_python-*.whl "$OUT"/hearth-build.json
# The sapphirerapids variant compiles llama.cpp's AMX kernel, which faults on its first decode
# on those Xeons (llama.cpp issue #20824): the source is patched first, as the set-up does on a
# CPU with AMX (packaging/patches/llama-amx-tile-config.patch, scripts/_llama.sh).
source scripts/_llama.sh
LLAMA_VERSION=$VERSION
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tree=$(llama_patched_source "$work" "$AMX_PATCH")
echo "building llama-cpp-python $VERSION with: ${args[*]}; patched: $(basename "$AMX_PATCH")" >&2
CMAKE_ARGS="${args[*]}" "$PY" -m pip wheel --no-cache-dir --no-deps --no-binary llama-cpp-python \
    -w "$OUT" "$tree"
"$PY" - "$OUT/hearth-build.json" "${args[*]}" "$(basename "$AMX_PATCH")" "$AMX_UPSTREAM" <<'PYTHON'
import json, sys, time
out, args, patch, upstream = sys.argv[1:]
json.dump({"backend": "portable", "cmake_args": args, "cflags": "", "amx": "patched",
           "patch": patch, "patch_answers": upstream,
           "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, open(out, "w"), indent=2)
PYTHON
ls "$OUT"/llama_cpp_python-*.whl
