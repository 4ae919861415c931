"""engine/llama_build talks to the same ggml that llama.cpp uses. A wheel stores libggml.so,
libggml.so.0 and libggml.so.0.x.y as separate copies; opening the wrong one gives a second ggml
whose backend registry is empty, so a portable build (backends loaded as modules) would load
its CPU backend where llama.cpp never sees it, and fail every model load."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json
import llama_cpp
from engine import llama_build
llama_build.load_backends()
info = llama_build.build_info()
maps = sorted({line.split()[-1].rsplit('/', 1)[-1] for line in open('/proc/self/maps')
               if '/libggml.' in line})
print(json.dumps([maps, info['cpu_kernels'], [d['type'] for d in info['devices']]]))
"""


def test_one_ggml_in_the_process_and_it_has_a_cpu_backend() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    maps, kernels, devices = json.loads(out.stdout)
    assert len(maps) == 1, f"more than one copy of libggml is loaded: {maps}"
    assert kernels, "llama.cpp reports no CPU kernels: its registry has no CPU backend"
    assert "CPU" in devices
