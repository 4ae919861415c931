"""GPU layers for a load: what Automatic asks for, what is tried when a load fails, and what
llama.cpp really did, read from its own log rather than from our estimate.

- Automatic (LoadParams.gpu_layers == AUTO) asks engine.memory's estimate how many layers fit
  in the device's free memory (capped by HEARTH_GPU_MEMORY_LIMIT, bytes, where set: a budget
  for a GPU shared with other programs). If llama.cpp still fails to load, fewer layers are
  tried, then the CPU; each failure is kept and said.
- A number the user set is tried as it is, once: a failure says so, it is not second-guessed.
- llama.cpp counts the output layer as one more than the model's blocks ("offloaded 31/31
  layers to GPU" for 30 blocks). Its per-device buffer sizes tell where the weights went.
Runs in the model worker, the one process that has llama.cpp loaded.
"""

from __future__ import annotations

import ctypes
import os
import re
from dataclasses import dataclass, field
from typing import Any

AUTO = -1  # LoadParams.gpu_layers: as many layers as fit; any other value is taken as it is
MEMORY_LIMIT_ENV = "HEARTH_GPU_MEMORY_LIMIT"

_OFFLOADED = re.compile(r"offloaded (\d+)/(\d+) layers to GPU")
_BUFFER = re.compile(r"(\S+) (model|KV) buffer size = +([\d.]+) MiB")
_MEMORY = re.compile(
    r"out of (device )?memory|OutOfDeviceMemory|failed to allocate|unable to allocate|"
    r"cudaMalloc|ErrorOutOfHostMemory|allocation of size \d+ failed",
    re.IGNORECASE,
)


@dataclass
class Attempt:
    layers: int  # as passed to llama.cpp: -1 is all
    error: str = ""  # empty when it loaded
    memory: bool = False  # the failure was for memory (llama.cpp's log said so)


@dataclass
class Report:
    """What a load did with the GPU, for the header, `hearth doctor` and the API."""

    requested: str  # "automatic" or the number the user set
    layers: int = 0  # offloaded, as llama.cpp reported
    total: int = 0  # the model's layers as llama.cpp counts them (blocks + output)
    devices: dict[str, float] = field(default_factory=dict)  # device -> MiB of weights there
    attempts: list[Attempt] = field(default_factory=list)
    reason: str = ""  # why Automatic chose what it tried first
    advice: str | None = None  # a GPU this build cannot use, and the command that fixes it

    @property
    def summary(self) -> str:
        """One line: "GPU 31/31 layers", "GPU 12/31 layers", "CPU"."""
        if self.layers <= 0:
            return "CPU"
        return f"GPU {self.layers}/{self.total} layers"

    @property
    def note(self) -> str:
        """Why the load ended where it did, when it is not what was asked: '' otherwise."""
        failed = [a for a in self.attempts if a.error]
        if not failed:
            return ""
        first = failed[0]
        tried = "all layers" if first.layers < 0 else f"{first.layers} layers"
        why = "not enough GPU memory" if first.memory else first.error
        return f"{tried} on the GPU failed ({why}); loaded with {self.summary}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "layers": self.layers,
            "total": self.total,
            "devices": self.devices,
            "attempts": [a.__dict__ for a in self.attempts],
            "reason": self.reason,
            "advice": self.advice,
            "summary": self.summary,
            "note": self.note,
        }


def read_log(lines: list[str], report: Report) -> None:
    """Fill `report` from llama.cpp's log of one successful load."""
    report.devices = {}
    for line in lines:
        if m := _OFFLOADED.search(line):
            report.layers, report.total = int(m[1]), int(m[2])
        elif (m := _BUFFER.search(line)) and m[2] == "model":
            device = m[1].removesuffix("_Mapped")
            report.devices[device] = report.devices.get(device, 0.0) + float(m[3])


def failed_for_memory(lines: list[str]) -> bool:
    return any(_MEMORY.search(line) for line in lines)


def ladder(first: int, blocks: int) -> list[int]:
    """The layer counts to try, in order, from `first` (-1: all) down to the CPU (0)."""
    top = blocks + 1 if first < 0 else first
    steps = [first, top * 3 // 4, top // 2, top // 4, 0]
    out: list[int] = []
    for n in steps:
        if n not in out and (n < 0 or n <= top):
            out.append(n)
    return out


def memory_limit() -> int | None:
    value = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    return int(value) if value.isdigit() else None


class LlamaLog:
    """llama.cpp's (and ggml's) log lines while it is in effect, kept in memory. llama-cpp-
    python's own handler prints them to stderr when verbose and drops them otherwise; it is
    put back on exit."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._partial = ""
        self._callback: Any = None

    def __enter__(self) -> LlamaLog:
        import llama_cpp

        @llama_cpp.llama_log_callback
        def keep(_level: int, text: bytes, _data: ctypes.c_void_p) -> None:
            self._partial += text.decode("utf-8", errors="replace")
            *done, self._partial = self._partial.split("\n")
            self.lines.extend(done)

        self._callback = keep  # ctypes must not free it while C holds it
        llama_cpp.llama_log_set(keep, ctypes.c_void_p(0))
        return self

    def __exit__(self, *_exc: object) -> None:
        import llama_cpp
        from llama_cpp import _logger

        if self._partial:
            self.lines.append(self._partial)
        llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))


def automatic(
    model_path: str, context: int, kv_type: str = "f16"
) -> tuple[list[int], str, str | None]:
    """The layer counts Automatic tries for this file, in order (-1 all, 0 none), why it
    starts where it does, and the advice for a GPU this build cannot use: the memory estimate
    against the free memory of the device llama.cpp would use. Reads the file's header once."""
    from dataclasses import replace

    from engine import gguf, hardware, llama_build, memory

    hw = hardware.detect(llama_build.build_info())
    limit = memory_limit()
    if limit is not None:
        capped = tuple(
            replace(
                g, memory_free=min(g.memory_free, limit), memory_total=min(g.memory_total, limit)
            )
            for g in hw.gpus
        )
        hw = replace(hw, gpus=capped)
    if not hw.usable_gpus:
        # No vulkaninfo here: a subprocess on every load; the Models page asks it, off the GUI
        # thread, and says the rest.
        return [0], "no GPU this build of llama.cpp can use", hardware.advice(hw, probe=False)
    shape = memory.ModelShape.from_gguf(gguf.inspect(model_path))
    est = memory.estimate(shape, hw, context, kv_type)
    budget = f" (budget {MEMORY_LIMIT_ENV}={limit})" if limit is not None else ""
    tries = ladder(est.gpu_layers, shape.layers) if est.gpu_layers != 0 else [0]
    return tries, est.explanation + budget, None
