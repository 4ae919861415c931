"""GPU layers at load: the plan Automatic follows, the fallbacks, and what llama.cpp reported.
The GPU itself is exercised in tests/gpu (the Vulkan build on Mesa's software device); these
run on whatever build is installed, and read llama.cpp's own log of a real load."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import hardware
from engine.hardware import GPU, Hardware
from engine.runtime import LoadParams, offload
from tests.runtimes import new_runtime


def test_the_ladder_goes_down_to_the_cpu_and_never_repeats() -> None:
    assert offload.ladder(-1, 30) == [-1, 23, 15, 7, 0]
    assert offload.ladder(12, 30) == [12, 9, 6, 3, 0]
    assert offload.ladder(1, 30) == [1, 0]


def test_a_real_load_is_read_from_llama_cpp_own_log(bundled_gguf: Path) -> None:
    """The log of a real load through the installed build: where the weights went."""
    from llama_cpp import Llama

    with offload.LlamaLog() as native:
        llm = Llama(model_path=str(bundled_gguf), n_ctx=256, n_gpu_layers=-1, verbose=False)
    llm.close()
    report = offload.Report("automatic")
    offload.read_log(native.lines, report)
    assert len(native.lines) > 100
    assert sum(report.devices.values()) == pytest.approx(92.1, abs=1.0)  # MiB of weights
    if report.layers:  # a GPU build: every layer and the output went to the device
        assert report.layers == report.total == 31
    else:
        assert report.summary == "CPU" and list(report.devices) == ["CPU"]


def test_memory_failures_are_told_from_other_failures() -> None:
    """Lines as ggml's Vulkan and CUDA backends and llama.cpp's loader write them."""
    for line in (
        "ggml_vulkan: Device memory allocation of size 184549376 failed.",
        "vk::Device::allocateMemory: ErrorOutOfDeviceMemory",
        "alloc_tensor_range: failed to allocate CUDA0 buffer of size 96575488",
        "ggml_cuda_device_malloc: cudaMalloc failed: out of memory",
    ):
        assert offload.failed_for_memory([line]), line
    corrupt = "llama_model_load: error loading model: tensor data is not within the file bounds"
    assert not offload.failed_for_memory([corrupt])


def test_automatic_and_a_set_number_are_reported_back(bundled_gguf: Path) -> None:
    runtime = new_runtime()
    try:
        auto = runtime.load(LoadParams(str(bundled_gguf), context_length=1024)).runtime["offload"]
        assert auto["requested"] == "automatic" and auto["reason"]
        assert [a["error"] for a in auto["attempts"]] == [""]
        five = runtime.load(
            LoadParams(str(bundled_gguf), context_length=1024, gpu_layers=5)
        ).runtime["offload"]
        assert five["requested"] == "5" and [a["layers"] for a in five["attempts"]] == [5]
        # llama.cpp's count, not ours: 5 on a GPU build, 0 on a CPU-only one
        assert five["layers"] in (0, 5)
    finally:
        runtime.close()


def test_a_gpu_the_build_cannot_use_gets_the_command_that_fixes_it() -> None:
    card = GPU("NVIDIA RTX 4090", "none", 24 << 30, 23 << 30, source="NVML", usable=False)
    hw = Hardware(32 << 30, 30 << 30, "cpu", 8, 16, (), "CPU", (card,))
    said = hardware.advice(hw)
    assert said is not None and "RTX 4090" in said
    assert "HEARTH_LLAMA_BACKEND=cuda ./scripts/run" in said
    usable = GPU("NVIDIA RTX 4090", "CUDA", 24 << 30, 23 << 30)
    assert (
        hardware.advice(Hardware(32 << 30, 30 << 30, "cpu", 8, 16, (), "CUDA", (usable,))) is None
    )
