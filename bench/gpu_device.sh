#!/usr/bin/env bash
# Hearth's engine against llama.cpp's own llama-bench on a CUDA GPU, same model, same layers,
# same run: the one script for the `run` tool's device machine (no network there, nvcc, cmake
# and a Python 3 with numpy, jinja2 and psutil; 64 MiB of files travel).
#
# Here, once:   bash bench/gpu_device.sh prepare      # -> .gpu/ (trimmed llama.cpp source,
#                                                      #    the diskcache wheel); git ignores it
# There:        bash bench/gpu_device.sh              # with carry [".gpu"]; writes $OUT/
#
# It builds llama.cpp (the very version llama-cpp-python vendors) once, with CUDA for the card
# present only (CMAKE_CUDA_ARCHITECTURES from nvidia-smi), as shared libraries for
# llama-cpp-python's Python package and as llama-bench; writes a llama-shaped GGUF with random
# weights there (bench/make_random_gguf.py: the bundled model does not fit in what travels,
# and speed does not depend on the values); then runs bench/bench_inference.py with every layer
# offloaded, Hearth's engine and llama-bench alone, one after the other.
# CUDA_ARCH=90 names the architecture where nvidia-smi cannot (a compile-only check here).
# BACKEND=cpu runs the same steps without CUDA, to try the script on a machine with no GPU
# (with PYTHON=.venv/bin/python here: the device's python3 has psutil, this machine's not).
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=0.3.36
CARRY=.gpu

if [ "${1:-}" = prepare ]; then
    mkdir -p "$CARRY" && grep -qx "/$CARRY/" .git/info/exclude 2>/dev/null || echo "/$CARRY/" >>.git/info/exclude
    work=$(mktemp -d)
    .venv/bin/python -m pip download -q --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$work"
    tar -xzf "$work/llama_cpp_python-$VERSION.tar.gz" -C "$work"
    src="$work/llama_cpp_python-$VERSION"
    # What the build does not need: git history, the vocabularies, docs, tests, examples, the
    # server and its web UI, and the backends other than the CPU's and CUDA's.
    rm -rf "$src"/{.git,.github} "$src"/vendor/llama.cpp/{models,docs,tests,benches,examples,media,.devops}
    rm -rf "$src"/vendor/llama.cpp/tools/{server,ui}
    for b in hexagon sycl opencl et metal cann musa webgpu zdnn zendnn openvino virtgpu vulkan; do
        rm -rf "$src/vendor/llama.cpp/ggml/src/ggml-$b"
    done
    tar -czf "$CARRY/llama-src.tar.gz" -C "$work" "llama_cpp_python-$VERSION"
    .venv/bin/python -m pip download -q --no-deps --only-binary :all: diskcache -d "$CARRY"
    rm -rf "$work"
    du -sh "$CARRY"/*
    exit 0
fi

OUT=${OUT:-/tmp/gpu-out}
BACKEND=${BACKEND:-cuda}
PY=${PYTHON:-python3}
JOBS=$(nproc)
mkdir -p "$OUT" /tmp/gpu
export PYTHONUNBUFFERED=1 HEARTH_HOME=/tmp/gpu/home
log() { echo "== $(date +%T) $*" | tee -a "$OUT/steps.txt"; }

log "machine"
{ nvidia-smi || true; nproc; "$PY" --version; } 2>&1 | tee "$OUT/machine.txt"

tar -xzf "$CARRY/llama-src.tar.gz" -C /tmp/gpu
SRC=/tmp/gpu/llama_cpp_python-$VERSION
args=(-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF)
if [ "$BACKEND" = cuda ]; then
    arch=${CUDA_ARCH:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d '. ')}
    nvcc=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc)
    args+=(-DGGML_CUDA=ON "-DCMAKE_CUDA_ARCHITECTURES=${arch}-real" "-DCMAKE_CUDA_COMPILER=$nvcc")
fi
log "build llama.cpp ($BACKEND) with ${args[*]}"
cmake -S "$SRC/vendor/llama.cpp" -B /tmp/gpu/build "${args[@]}" >"$OUT/cmake.txt" 2>&1
cmake --build /tmp/gpu/build --target llama llama-bench -j "$JOBS" >"$OUT/build.txt" 2>&1 ||
    { tail -40 "$OUT/build.txt"; exit 1; }

log "llama-cpp-python's Python package over those libraries"
site=/tmp/gpu/site
mkdir -p "$site"
cp -r "$SRC/llama_cpp" "$site/"
mkdir -p "$site/llama_cpp/lib"
find /tmp/gpu/build -name "lib*.so*" -exec cp -P {} "$site/llama_cpp/lib/" \;
"$PY" -m pip install -q --no-index --no-deps --target "$site" "$CARRY"/diskcache-*.whl
export PYTHONPATH="$site:$PWD"
"$PY" -c "import llama_cpp; print('gpu offload:', llama_cpp.llama_supports_gpu_offload())" |
    tee -a "$OUT/steps.txt"

log "a random-weight llama (default 16 layers x 2048, Q8_0, about 1.1 GB) ${MODEL_ARGS:-}"
PYTHONPATH="$SRC/vendor/llama.cpp/gguf-py:$PYTHONPATH" "$PY" bench/make_random_gguf.py \
    /tmp/gpu/model.gguf ${MODEL_ARGS:-}

log "measure: every layer offloaded, Hearth's engine and llama-bench"
ngl=99
[ "$BACKEND" = cpu ] && ngl=0
"$PY" bench/bench_inference.py --model /tmp/gpu/model.gguf --gpu-layers "$ngl" \
    --threads "${THREADS:-4}" --rounds "${REPEATS:-3}" --llama-bench /tmp/gpu/build/bin/llama-bench \
    --only engine,llama-bench --json "$OUT/gpu_inference.json" 2>&1 | tee "$OUT/gpu_inference.txt"
log "done"
