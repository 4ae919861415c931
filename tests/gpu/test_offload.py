"""The bundled model on a GPU device through the real runtime: all layers, a set number, a
budget too small for all of them, a right answer, and stop during an offloaded prompt. Every
layer count is llama.cpp's own report of the load, not our estimate."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import gguf, hardware, llama_build, memory
from engine.hardware import GPU
from engine.runtime import (
    ChatMessage,
    ChatRequest,
    Done,
    LoadParams,
    ModelRuntime,
    SamplingParams,
    TextPiece,
)
from engine.runtime.offload import AUTO, MEMORY_LIMIT_ENV
from tests.runtimes import bundled_system_prompt, new_runtime

GREEDY = SamplingParams(temperature=0.0, max_tokens=32)
BLOCKS = 30  # SmolLM2-135M; llama.cpp counts one more, the output layer


def france() -> ChatRequest:
    return ChatRequest(
        (ChatMessage("user", "What is the capital of France?"),), GREEDY, bundled_system_prompt()
    )


def answer(runtime: ModelRuntime, request: ChatRequest) -> tuple[str, Done]:
    events = list(runtime.stream_chat(request))
    done = events[-1]
    assert isinstance(done, Done)
    return "".join(e.text for e in events if isinstance(e, TextPiece)), done


@pytest.fixture
def runtime(gpu: GPU) -> Iterator[ModelRuntime]:
    rt = new_runtime()
    yield rt
    rt.close()


def test_automatic_puts_every_layer_on_the_device_and_answers(
    runtime: ModelRuntime, bundled_gguf: Path, gpu: GPU
) -> None:
    loaded = runtime.load(LoadParams(str(bundled_gguf), context_length=2048, gpu_layers=AUTO))
    offload = loaded.runtime["offload"]
    assert (offload["layers"], offload["total"]) == (BLOCKS + 1, BLOCKS + 1)
    device = next(d for d in offload["devices"] if d.startswith(gpu.backend))
    assert offload["devices"][device] > 80  # MiB of the model's ~92 MiB of weights
    assert [a["error"] for a in offload["attempts"]] == [""]
    text, _ = answer(runtime, france())
    assert "Paris" in text


def test_a_set_number_of_layers_is_what_llama_cpp_offloads(
    runtime: ModelRuntime, bundled_gguf: Path
) -> None:
    loaded = runtime.load(LoadParams(str(bundled_gguf), context_length=2048, gpu_layers=10))
    offload = loaded.runtime["offload"]
    assert (offload["requested"], offload["layers"], offload["total"]) == ("10", 10, BLOCKS + 1)
    assert "CPU" in offload["devices"]  # the rest stayed on the CPU
    text, _ = answer(runtime, france())
    assert "Paris" in text


def test_the_fit_estimate_sees_the_device_and_its_memory(bundled_gguf: Path, gpu: GPU) -> None:
    hw = hardware.detect(llama_build.build_info())
    assert gpu in hw.usable_gpus and gpu.memory_total > 0 and gpu.memory_free > 0
    shape = memory.ModelShape.from_gguf(gguf.inspect(bundled_gguf))
    est = memory.estimate(shape, hw, 2048)
    assert est.verdict == "gpu" and est.device == gpu.name


def test_a_budget_too_small_for_every_layer_gives_a_partial_offload(
    bundled_gguf: Path, gpu: GPU, monkeypatch: pytest.MonkeyPatch
) -> None:
    shape = memory.ModelShape.from_gguf(gguf.inspect(bundled_gguf))
    hw = hardware.detect(llama_build.build_info())
    need = memory.estimate(shape, hw, 2048).needed_bytes
    budget = int(need * 0.6)
    monkeypatch.setenv(MEMORY_LIMIT_ENV, str(budget))  # the worker reads it at load
    rt = new_runtime()
    try:
        offload = rt.load(LoadParams(str(bundled_gguf), context_length=2048)).runtime["offload"]
        assert 0 < offload["layers"] < BLOCKS, offload
        assert MEMORY_LIMIT_ENV in offload["reason"] and "layers on the GPU" in offload["reason"]
        text, _ = answer(rt, france())
        assert "Paris" in text
    finally:
        rt.close()


def test_stop_during_an_offloaded_prompt_is_prompt(
    runtime: ModelRuntime, bundled_gguf: Path
) -> None:
    runtime.load(LoadParams(str(bundled_gguf), context_length=8192, gpu_layers=AUTO))
    pid = runtime.worker_pid
    filler = " ".join(f"Fact {i}: the lighthouse has {i} steps." for i in range(330))
    request = ChatRequest((ChatMessage("user", filler + "\nSummarise."),), GREEDY)
    fired: list[float] = []

    def stop_soon() -> None:
        time.sleep(0.5)
        fired.append(time.perf_counter())
        runtime.stop()

    thread = threading.Thread(target=stop_soon)
    thread.start()
    _, done = answer(runtime, request)
    ended = time.perf_counter()
    thread.join()
    assert done.stats.stop_reason == "cancelled" and done.stats.generated_tokens == 0
    assert ended - fired[0] < 2.0
    # GPU backends do not consult llama.cpp's abort callback inside a batch, and on Mesa's
    # software device one batch of the prompt takes many seconds: this stop is the hard one
    # (the worker is replaced). The next question reloads the model onto the device.
    text, _ = answer(runtime, france())
    assert "Paris" in text
    loaded = runtime.loaded
    assert loaded is not None and loaded.runtime["offload"]["layers"] == BLOCKS + 1
    assert pid is not None
