#!/usr/bin/env bash
# Build llama.cpp's own `llama-bench` from the very llama.cpp that llama-cpp-python vendors
# (same version, same default CMake flags: native CPU kernels, OpenMP, llamafile, repack),
# so bench/bench_inference.py can compare our engine against it on the same GGUF and threads.
# Output: bench/.llama-bench/bin/llama-bench, and llama-quantize to make a K-quant of
# bench/make_random_gguf.py's f16 output (ignored by git).
set -euo pipefail
cd "$(dirname "$0")"
VERSION=$(../.venv/bin/python -c "import importlib.metadata as m; print(m.version('llama-cpp-python'))")
WORK=.llama-bench
mkdir -p "$WORK"
if [ ! -d "$WORK/src" ]; then
    ../.venv/bin/python -m pip download -q --no-deps --no-binary :all: \
        "llama-cpp-python==$VERSION" -d "$WORK/sdist"
    mkdir -p "$WORK/src"
    tar -xzf "$WORK"/sdist/llama_cpp_python-"$VERSION".tar.gz -C "$WORK/src" --strip-components=1
fi
cmake -S "$WORK/src/vendor/llama.cpp" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release \
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=OFF -DBUILD_SHARED_LIBS=OFF >/dev/null
cmake --build "$WORK/build" --target llama-bench llama-quantize -j "$(nproc)"
mkdir -p "$WORK/bin"
cp "$WORK/build/bin/llama-bench" "$WORK/build/bin/llama-quantize" "$WORK/bin/"
echo "built $WORK/bin/llama-bench (llama.cpp from llama-cpp-python $VERSION)"
