"""What the installed llama.cpp can do: version, CPU kernels, GPU backends and devices.

The device list comes from ggml's backend registry (ggml_backend_dev_*), which
llama-cpp-python does not bind, so we call it through ctypes on the bundled libggml.

A release build (packaging/build_llama.sh) compiles ggml's backends as loadable modules, one
CPU module per instruction-set level plus CUDA where built. ggml then starts with no backend at
all, and llama-cpp-python never loads one, so `load_backends()` must run before any model.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import logging
import os
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


# Forces one CPU variant of a build with one per instruction-set level ("haswell", "sse42",
# "x64"...): the release's smoke test proves each variant the build host can run this way.
VARIANT_ENV = "HEARTH_GGML_CPU_VARIANT"


def _cpu_variant_paths() -> list[Path]:
    """The build's CPU variant modules (none for a build with its CPU backend linked in)."""
    folder = _package_dir()
    return sorted((folder / "lib").glob("libggml-cpu-*.so")) if folder is not None else []


def load_backends(step_down: bool = False) -> None:
    """Load ggml's backend modules from llama_cpp/lib if the build has them (a no-op for a
    build with its CPU backend linked in). ggml keeps the best CPU variant this CPU supports,
    and a GPU module only where its driver loads. Raises RuntimeError if none loads.

    With `step_down` (the runtime's safe path after a native crash), or HEARTH_GGML_CPU_VARIANT
    set, one CPU variant is loaded instead of the best: the named one, or the next below the
    best (an illegal instruction means the best one is wrong for this CPU or its OS)."""
    global _backends_loaded
    if _backends_loaded:
        return
    ggml = _ggml()
    if ggml is None:  # a layout we do not know: leave it to llama_cpp
        _backends_loaded = True
        return
    ggml.ggml_backend_reg_count.restype = ctypes.c_size_t
    # ggml reports each module it loads through llama-cpp-python's log callback, which prints
    # to stderr until a Llama(verbose=False) quiets it; quiet it first, as that would.
    native_log = logging.getLogger("llama-cpp-python")
    if native_log.level == logging.NOTSET:
        native_log.setLevel(logging.ERROR)
    forced = os.environ.get(VARIANT_ENV, "").strip()
    if ggml.ggml_backend_reg_count() == 0 and _cpu_variant_paths() and (forced or step_down):
        _load_one_variant(ggml, forced or None)
    if ggml.ggml_backend_reg_count() == 0:
        ggml.ggml_backend_load_all_from_path.argtypes = [ctypes.c_char_p]
        ggml.ggml_backend_load_all_from_path(str(_lib_dir()).encode())
        if ggml.ggml_backend_reg_count() == 0:
            raise RuntimeError(
                f"llama.cpp found no usable backend in {_lib_dir()}: the "
                "installation is incomplete, or no CPU variant fits this CPU"
            )
        log.info("loaded %d ggml backends from %s", ggml.ggml_backend_reg_count(), _lib_dir())
    _backends_loaded = True


def _load_one_variant(ggml: ctypes.CDLL, name: str | None) -> None:
    """Register the CPU variant `name` (None: the next below the best this CPU runs) and
    every non-CPU module, as ggml_backend_load_all_from_path would with only that variant."""
    ggml.ggml_backend_load.restype = ctypes.c_void_p
    ggml.ggml_backend_load.argtypes = [ctypes.c_char_p]
    if name is None:
        ranked = sorted(_variant_scores().items(), key=lambda item: -item[1])
        if len(ranked) < 2:
            return  # nothing below the best: ggml loads it as usual
        name = ranked[1][0]
    path = _lib_dir() / f"libggml-cpu-{name}.so"
    if not path.is_file():
        raise RuntimeError(f"llama.cpp has no CPU variant “{name}” in {_lib_dir()}")
    if not ggml.ggml_backend_load(str(path).encode()):
        raise RuntimeError(f"llama.cpp's CPU variant “{name}” does not run on this CPU")
    log.info("llama.cpp CPU variant %s, chosen (not ggml's best)", name)
    for module in sorted(_lib_dir().glob("libggml-*.so")):
        if module.name.startswith(("libggml-cpu-", "libggml-base")):
            continue
        ggml.ggml_backend_load(str(module).encode())  # a GPU module: loads where it can


def _variant_scores() -> dict[str, int]:
    """Each CPU variant's `ggml_backend_score` on this CPU (0: cannot run here)."""
    scores: dict[str, int] = {}
    paths = _cpu_variant_paths()
    if not paths:
        return scores
    # The modules need libggml-base, which the loader finds only once something loaded it
    # (llama_cpp does, from the same folder; here it may not have been imported yet).
    for base in sorted(paths[0].parent.glob("libggml-base.so.[0-9]")):
        with contextlib.suppress(OSError):
            ctypes.CDLL(str(base), mode=ctypes.RTLD_GLOBAL)
    for path in paths:
        try:
            module = ctypes.CDLL(str(path))
            module.ggml_backend_score.restype = ctypes.c_int
            score = int(module.ggml_backend_score())
        except (OSError, AttributeError):
            continue
        if score > 0:
            scores[path.name.removeprefix("libggml-cpu-").removesuffix(".so")] = score
    return scores


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


def _package_dir() -> Path | None:
    """The installed llama_cpp package's folder, found without importing it."""
    import importlib.util

    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def build_record() -> dict[str, Any] | None:
    """How the installed llama.cpp was built, as the set-up or the release wrote it
    (hearth-build.json beside llama_cpp: backend, flags, AMX handling, any source patch)."""
    folder = _package_dir()
    path = folder / "hearth-build.json" if folder is not None else None
    if path is None or not path.is_file():
        return None
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def cpu_variant() -> str | None:
    """For a build with one CPU module per instruction-set level, the one in use: forced by
    HEARTH_GGML_CPU_VARIANT, else the one ggml picks (the highest `ggml_backend_score`, as
    ggml itself chooses); None for a build with one CPU backend compiled in. Each module is
    only opened and asked, never run."""
    return _variant_in_use(_variant_scores())


def _variant_in_use(scores: dict[str, int]) -> str | None:
    forced = os.environ.get(VARIANT_ENV, "").strip()
    if forced:
        return forced
    return max(scores, key=lambda name: scores[name]) if scores else None


SELFTEST_RECORD = "hearth-selftest.json"  # beside the installed llama_cpp


def library_folder() -> Path | None:
    """The folder of llama.cpp's shared libraries inside the installed llama_cpp, or None."""
    folder = _package_dir()
    return folder / "lib" if folder is not None else None


def library_identity() -> dict[str, Any]:
    """Which llama.cpp build this is: its folder and the hash of its libraries, so a record
    is never taken for another build's."""
    lib = library_folder()
    if lib is None:
        return {"path": None, "sha256": None}
    digest = hashlib.sha256()
    for path in sorted(lib.glob("*")):
        if path.is_file() and not path.is_symlink():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return {"path": str(lib), "sha256": digest.hexdigest()}


def selftest_record_path() -> Path | None:
    """Where the installed llama_cpp's self-test record lives (None: no llama_cpp)."""
    folder = _package_dir()
    return folder / SELFTEST_RECORD if folder is not None else None


def read_selftest() -> dict[str, Any] | None:
    """The installed build's self-test record (engine/runtime/selftest.py), marked `current`
    when it is this build's."""
    path = selftest_record_path()
    if path is None or not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    record["current"] = record.get("library", {}).get("sha256") == library_identity()["sha256"]
    return dict(record)


def kernels_report(cpu_features: tuple[str, ...]) -> dict[str, Any]:
    """What `hearth doctor` and the Models page say about the CPU side of llama.cpp: the
    CPU's relevant features, the variant and kernels in use, the AMX handling and the
    self-test's result. Reads files only; imports no llama_cpp."""
    record = build_record() or {}
    test = read_selftest()
    fast_buffers: list[str] = []
    if test:
        for check in test.get("checks", []):
            fast = check.get("facts", {}).get("fast")
            if isinstance(fast, dict):
                plain = ("CPU", "CPU_Mapped")
                fast_buffers = [b for b in fast.get("buffers", []) if b not in plain]
    scores = _variant_scores()  # each module opened once for the variant and the list
    variant = _variant_in_use(scores)
    amx_cpu = "amx_tile" in cpu_features
    amx_state = (
        "none"
        if not amx_cpu
        else {"patched": "patched", "off": "off"}.get(str(record.get("amx")), "stock")
    )
    amx_text = {
        "none": "this CPU has no AMX",
        "patched": f"on, patched ({record.get('patch_answers') or record.get('patch')})",
        "off": "off (built without AMX)",
        "stock": "as llama.cpp ships it (not proven on this CPU)",
    }[amx_state]
    if "AMX" in fast_buffers:
        kernels_state, kernels = "amx", "AMX tiles"
    elif any("REPACK" in b for b in fast_buffers):
        kernels_state, kernels = "repacked", "weights repacked for this CPU"
    elif test:
        kernels_state, kernels = "plain", "the plain ones (no AMX or repacked weights for it here)"
    else:
        kernels_state, kernels = "unknown", "not yet seen (no self-test here)"
    return {
        "features": list(cpu_features),
        "variant": variant or "one CPU backend compiled for the machine it was built on",
        "variant_in_use": variant,  # None: a build with one CPU backend (-march=native)
        "amx_state": amx_state,  # none (no AMX), patched, off, stock
        "kernels_state": kernels_state,  # amx, repacked, plain, unknown
        "variants_here": sorted(scores),  # of a portable build: those this CPU runs
        "amx": amx_text,
        "fast_kernels": kernels,
        "build": record,
        "selftest": test,
    }
