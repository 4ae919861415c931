"""What this machine has: RAM, CPU, the GPU backend llama.cpp was built with, GPUs and their memory.

Sources, in order of trust: llama.cpp's own device list (what it will really use, with free
memory), NVML for NVIDIA cards the build cannot use (so we can say "this build has no CUDA"),
and the OS for RAM and CPU. Nothing here touches the network.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from typing import Any

log = logging.getLogger(__name__)

# CPU features that change which llama.cpp kernels run (x86 and Arm names as the OS reports them)
INTERESTING_FLAGS = (
    "sse3",
    "ssse3",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    "asimd",
    "neon",
    "sve",
    "i8mm",
    "dotprod",
    "asimddp",
)


@dataclass(frozen=True)
class GPU:
    name: str
    backend: str  # "CUDA", "Metal", "Vulkan", "ROCm", ... or "none" when the build cannot use it
    memory_total: int
    memory_free: int
    unified: bool = False  # shares system RAM (Apple silicon, integrated GPUs)
    source: str = "llama.cpp"
    usable: bool = True  # the installed llama.cpp build can offload to it


@dataclass(frozen=True)
class Hardware:
    ram_total: int
    ram_available: int
    cpu_model: str
    cpu_physical: int
    cpu_logical: int
    cpu_features: tuple[str, ...]
    gpu_backend: str  # the build's GPU backend, or "CPU" when it has none
    gpus: tuple[GPU, ...] = field(default_factory=tuple)

    @property
    def usable_gpus(self) -> tuple[GPU, ...]:
        return tuple(g for g in self.gpus if g.usable)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["gpus"] = [asdict(g) for g in self.gpus]
        return out


def _ram() -> tuple[int, int]:
    try:
        import psutil

        vm = psutil.virtual_memory()
        return int(vm.total), int(vm.available)
    except ImportError:  # pragma: no cover - psutil is a dependency
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        return pages, pages


def cpu() -> tuple[str, int, int, tuple[str, ...]]:
    """Model name, physical and logical cores, and the features in INTERESTING_FLAGS."""
    logical = os.cpu_count() or 1
    physical = logical
    try:
        import psutil

        physical = psutil.cpu_count(logical=False) or logical
    except ImportError:  # pragma: no cover
        pass
    model = platform.processor() or platform.machine()
    flags: set[str] = set()
    if platform.system() == "Linux":
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    key, _, value = line.partition(":")
                    key = key.strip()
                    if key in ("model name", "Model") and model in ("", platform.machine()):
                        model = value.strip()
                    elif key in ("flags", "Features") and not flags:
                        flags = set(value.split())
        except OSError:
            pass
    elif platform.system() == "Darwin":
        model = _sysctl("machdep.cpu.brand_string") or model
        if platform.machine() == "arm64":
            flags = {"neon", "asimd", "dotprod"}
    return model, physical, logical, tuple(f for f in INTERESTING_FLAGS if f in flags)


def _sysctl(name: str) -> str | None:
    try:
        out = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=2)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _backend_of(description: str, name: str) -> str:
    text = f"{name} {description}".lower()
    for needle, backend in (
        ("cuda", "CUDA"),
        ("metal", "Metal"),
        ("vulkan", "Vulkan"),
        ("rocm", "ROCm"),
        ("hip", "ROCm"),
        ("sycl", "SYCL"),
        ("opencl", "OpenCL"),
    ):
        if needle in text:
            return backend
    return name.rstrip("0123456789") or "GPU"


def nvml_gpus() -> list[GPU]:
    """NVIDIA GPUs through NVML (the driver's library), whatever llama.cpp was built with."""
    libname = ctypes.util.find_library("nvidia-ml") or "libnvidia-ml.so.1"
    if platform.system() == "Windows":
        libname = "nvml.dll"
    try:
        nvml = ctypes.CDLL(libname)
    except OSError:
        return []

    class Memory(ctypes.Structure):
        _fields_ = [
            ("total", ctypes.c_ulonglong),
            ("free", ctypes.c_ulonglong),
            ("used", ctypes.c_ulonglong),
        ]

    out: list[GPU] = []
    try:
        if nvml.nvmlInit_v2() != 0:
            return []
        count = ctypes.c_uint(0)
        nvml.nvmlDeviceGetCount_v2(ctypes.byref(count))
        for i in range(count.value):
            handle = ctypes.c_void_p()
            if nvml.nvmlDeviceGetHandleByIndex_v2(i, ctypes.byref(handle)) != 0:
                continue
            name = ctypes.create_string_buffer(96)
            nvml.nvmlDeviceGetName(handle, name, 96)
            mem = Memory()
            if nvml.nvmlDeviceGetMemoryInfo(handle, ctypes.byref(mem)) != 0:
                continue
            out.append(
                GPU(name.value.decode(errors="replace"), "CUDA", mem.total, mem.free, source="NVML")
            )
        nvml.nvmlShutdown()
    except (AttributeError, OSError) as exc:
        log.info("NVML query failed: %s", exc)
    return out


def detect(build: dict[str, Any] | None = None) -> Hardware:
    """Read the machine. `build` is llama_build.build_info() when the caller already has it."""
    if build is None:
        from engine import llama_build

        build = llama_build.build_info()
    ram_total, ram_available = _ram()
    model, physical, logical, flags = cpu()
    gpus: list[GPU] = []
    for dev in build.get("devices", []):
        if dev.get("type") not in ("GPU", "integrated GPU"):
            continue
        backend = _backend_of(dev.get("description", ""), dev.get("name", ""))
        unified = backend == "Metal" or dev.get("type") == "integrated GPU"
        gpus.append(
            GPU(
                dev.get("description") or dev.get("name", "GPU"),
                backend,
                int(dev.get("memory_total", 0)),
                int(dev.get("memory_free", 0)),
                unified=unified,
            )
        )
    build_backends = {g.backend for g in gpus}
    if "CUDA" not in build_backends:
        for g in nvml_gpus():
            gpus.append(
                GPU(g.name, "none", g.memory_total, g.memory_free, source="NVML", usable=False)
            )
    backend = sorted(build_backends)[0] if build_backends else "CPU"
    return Hardware(ram_total, ram_available, model, physical, logical, flags, backend, tuple(gpus))


# The set-up command that rebuilds llama.cpp for a backend (README, scripts/_llama.sh).
REBUILD = "HEARTH_LLAMA_BACKEND={backend} ./scripts/run"


def vulkan_gpus() -> list[str]:
    """Names of the real GPUs (not Mesa's software device) the Vulkan loader lists, through
    vulkaninfo where it is installed; [] where it is not."""
    try:
        out = subprocess.run(
            ["vulkaninfo", "--summary"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    names, name = [], ""
    for line in out.splitlines():
        key, _, value = (p.strip() for p in line.partition("="))
        if key == "deviceName":
            name = value
        elif key == "deviceType" and value.endswith(("DISCRETE_GPU", "INTEGRATED_GPU")):
            names.append(name)
    return names


def advice(hw: Hardware, probe: bool = True) -> str | None:
    """What to do when this machine has a GPU the installed llama.cpp cannot use: one sentence
    with the one command that fixes it; None when there is nothing to fix. `probe=False`
    leaves out vulkaninfo (a subprocess) and answers from NVML and the platform alone."""
    if hw.usable_gpus:
        return None
    nvidia = [g.name for g in hw.gpus if g.source == "NVML"]
    if nvidia:
        return (
            f"{nvidia[0]} is not used: this build of llama.cpp has no CUDA. Rebuild it with "
            f"`{REBUILD.format(backend='cuda')}` (needs the CUDA toolkit), or "
            f"`{REBUILD.format(backend='vulkan')}`."
        )
    if platform.system() == "Darwin" and platform.machine() == "arm64":
        return (
            "The Apple GPU is not used: this build of llama.cpp has no Metal. Rebuild it with "
            f"`{REBUILD.format(backend='metal')}`."
        )
    others = vulkan_gpus() if probe else []
    if others:
        return (
            f"{others[0]} is not used: this build of llama.cpp has no GPU backend. Rebuild it "
            f"with `{REBUILD.format(backend='vulkan')}`."
        )
    return None
