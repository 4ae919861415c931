"""What the installed llama.cpp can do: version, CPU kernels, GPU backends and devices.

The device list comes from ggml's backend registry (ggml_backend_dev_*), which
llama-cpp-python does not bind, so we call it through ctypes on the bundled libggml.

A release build (packaging/build_llama.sh) compiles ggml's backends as loadable modules, one
CPU module per instruction-set level plus CUDA where built. ggml then starts with no backend at
all, and llama-cpp-python never loads one, so `load_backends()` must run before any model.
"""

from __future__ import annotations

import ctypes
import logging
from importlib import metadata
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_DEVICE_TYPES = {0: "CPU", 1: "GPU", 2: "integrated GPU", 3: "accelerator"}


def _lib_dir() -> Path:
    import llama_cpp

    return Path(llama_cpp.__file__).parent / "lib"


_backends_loaded = False


def _ggml() -> ctypes.CDLL | None:
    """The libggml llama_cpp itself loaded (dlopen of the same file returns the same handle)."""
    import llama_cpp  # noqa: F401  (loads libggml first, with its own search rules)

    lib_dir = _lib_dir()
    # The file libllama links against is the one named by libggml's soname (libggml.so.0,
    # libggml.0.dylib). Wheels store libggml.so, .so.0 and .so.0.x.y as three separate copies,
    # and loading another copy makes a second ggml with its own, empty backend registry.
    patterns = (
        "libggml.so.[0-9]",
        "libggml.[0-9].dylib",
        "libggml.so*",
        "libggml.dylib",
        "ggml.dll",
    )
    candidates = [path for pattern in patterns for path in sorted(lib_dir.glob(pattern))]
    if not candidates:
        return None
    return ctypes.CDLL(str(candidates[0]))


def load_backends() -> None:
    """Load ggml's backend modules from llama_cpp/lib if the build has them (a no-op for a
    build with its CPU backend linked in). ggml keeps the best CPU variant this CPU supports,
    and a GPU module only where its driver loads. Raises RuntimeError if none loads."""
    global _backends_loaded
    if _backends_loaded:
        return
    ggml = _ggml()
    if ggml is None:  # a layout we do not know: leave it to llama_cpp
        _backends_loaded = True
        return
    ggml.ggml_backend_reg_count.restype = ctypes.c_size_t
    if ggml.ggml_backend_reg_count() == 0:
        # ggml reports each module it loads through llama-cpp-python's log callback, which
        # prints to stderr until a Llama(verbose=False) quiets it; quiet it first, as that would.
        native_log = logging.getLogger("llama-cpp-python")
        if native_log.level == logging.NOTSET:
            native_log.setLevel(logging.ERROR)
        ggml.ggml_backend_load_all_from_path.argtypes = [ctypes.c_char_p]
        ggml.ggml_backend_load_all_from_path(str(_lib_dir()).encode())
        if ggml.ggml_backend_reg_count() == 0:
            raise RuntimeError(
                f"llama.cpp found no usable backend in {_lib_dir()}: the "
                "installation is incomplete, or no CPU variant fits this CPU"
            )
        log.info("loaded %d ggml backends from %s", ggml.ggml_backend_reg_count(), _lib_dir())
    _backends_loaded = True


def _devices() -> list[dict[str, Any]]:
    try:
        ggml = _ggml()
        if ggml is None:
            return []
        ggml.ggml_backend_dev_count.restype = ctypes.c_size_t
        ggml.ggml_backend_dev_get.restype = ctypes.c_void_p
        ggml.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
        for fn in ("ggml_backend_dev_name", "ggml_backend_dev_description"):
            getattr(ggml, fn).restype = ctypes.c_char_p
            getattr(ggml, fn).argtypes = [ctypes.c_void_p]
        ggml.ggml_backend_dev_type.restype = ctypes.c_int
        ggml.ggml_backend_dev_type.argtypes = [ctypes.c_void_p]
        ggml.ggml_backend_dev_memory.argtypes = [
            ctypes.c_void_p,
            ctypes.POINTER(ctypes.c_size_t),
            ctypes.POINTER(ctypes.c_size_t),
        ]
    except (OSError, AttributeError) as exc:
        log.warning("could not query ggml devices: %s", exc)
        return []
    out = []
    for i in range(ggml.ggml_backend_dev_count()):
        dev = ggml.ggml_backend_dev_get(i)
        free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
        ggml.ggml_backend_dev_memory(dev, ctypes.byref(free), ctypes.byref(total))
        out.append(
            {
                "name": (ggml.ggml_backend_dev_name(dev) or b"").decode(),
                "description": (ggml.ggml_backend_dev_description(dev) or b"").decode(),
                "type": _DEVICE_TYPES.get(ggml.ggml_backend_dev_type(dev), "unknown"),
                "memory_free": free.value,
                "memory_total": total.value,
            }
        )
    return out


def parse_system_info(text: str) -> dict[str, dict[str, bool]]:
    """'CPU : AVX = 1 | AVX2 = 1 | ...' -> {'CPU': {'AVX': True, 'AVX2': True, ...}}."""
    backends: dict[str, dict[str, bool]] = {}
    current = "CPU"
    for part in text.split("|"):
        part = part.strip()
        if not part:
            continue
        if part.count(":") == 1 and "=" in part.split(":", 1)[1]:
            current, part = (p.strip() for p in part.split(":", 1))
        if "=" in part:
            key, value = (p.strip() for p in part.split("=", 1))
            backends.setdefault(current, {})[key] = value not in ("0", "")
    return backends


def build_info() -> dict[str, Any]:
    """Everything `hearth doctor` reports about llama.cpp. Imports llama_cpp (not cheap)."""
    import llama_cpp

    load_backends()
    system_info = llama_cpp.llama_print_system_info().decode(errors="replace")
    features = parse_system_info(system_info)
    cpu = features.get("CPU", {})
    lib_dir = _lib_dir()
    cpu_variants = sorted(p.name for p in lib_dir.glob("*ggml-cpu-*"))
    return {
        "llama_cpp_python": metadata.version("llama-cpp-python"),
        "system_info": system_info.strip(),
        "cpu_kernels": sorted(k for k, on in cpu.items() if on),
        "cpu_dispatch": ("runtime dispatch over " + ", ".join(cpu_variants))
        if cpu_variants
        else "one CPU backend compiled for the build machine's CPU (no runtime dispatch)",
        "gpu_offload": bool(llama_cpp.llama_supports_gpu_offload()),
        "mmap": bool(llama_cpp.llama_supports_mmap()),
        "devices": _devices(),
        "library_dir": str(lib_dir),
    }
