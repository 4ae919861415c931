"""The fit estimate: hand-computed cases, and the bundled model's measured memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import gguf, hardware
from engine.hardware import GPU, Hardware
from engine.models import catalog, fit
from tests.runtimes import new_runtime

GB = 10**9
MB = 2**20


def machine(ram: float, gpu_free: float | None = None, unified: bool = False) -> Hardware:
    gpus: tuple[GPU, ...] = ()
    if gpu_free is not None:
        name = "Apple M2" if unified else "NVIDIA GeForce RTX 3060"
        gpus = (
            GPU(
                name,
                "Metal" if unified else "CUDA",
                int(max(gpu_free, 12) * GB),
                int(gpu_free * GB),
                unified=unified,
            ),
        )
    return Hardware(
        int(ram * GB), int(ram * GB), "test CPU", 4, 8, ("avx2",), "CUDA" if gpus else "CPU", gpus
    )


# A made-up 32-layer model with round numbers, so every figure below can be checked by hand:
# weights 4.0 GB of which 0.5 GB embeddings/output -> 109.375 MB per layer (3.5e9 / 32).
SHAPE = fit.ModelShape(
    "hand",
    4 * GB,
    GB // 2,
    layers=32,
    heads=32,
    kv_heads=8,
    head_dim=128,
    vocab_size=32000,
    max_context=32768,
    embedding_length=4096,
)


def test_kv_cache_and_compute_by_hand() -> None:
    # 2 (K,V) x 32 layers x 4096 tokens x 8 kv heads x 128 dims x 2 bytes = 536,870,912
    assert SHAPE.kv_bytes(4096) == 536_870_912
    assert SHAPE.kv_bytes(4096, "q8_0") == 536_870_912 // 2 * 34 // 32
    # 512 tokens x 4096 x 4 bytes x 16 + 32000 x 4 x 8
    assert SHAPE.compute_bytes(4096) == 134_217_728 + 1_024_000
    assert SHAPE.layer_bytes == 3.5 * GB / 32


def test_cpu_only_machine() -> None:
    est = fit.estimate(SHAPE, machine(ram=16), 4096)
    need = 4 * GB + 536_870_912 + 135_241_728 + fit.RUNTIME_OVERHEAD
    assert est.verdict == "cpu" and est.gpu_layers == 0 and est.needed_bytes == need
    assert "runs on the CPU" in est.explanation and "no GPU" in est.explanation


def test_everything_fits_on_a_big_gpu() -> None:
    est = fit.estimate(SHAPE, machine(ram=16, gpu_free=11), 4096)
    assert est.verdict == "gpu" and est.gpu_layers == -1
    assert est.explanation.endswith("all 32 layers on the GPU.")


def test_partial_offload_counts_layers_by_hand() -> None:
    est = fit.estimate(SHAPE, machine(ram=16, gpu_free=3.9), 4096)
    # usable VRAM 3.51e9 - compute 135,241,728 - non-layer 0.5e9 = 2,874,758,272;
    # per layer 109,375,000 weights + 16,777,216 KV = 126,152,216 -> 22 layers
    assert est.verdict == "partial" and est.gpu_layers == 22
    assert "3.9 GB free on NVIDIA GeForce RTX 3060: 22 of 32 layers on the GPU" in est.explanation


def test_too_big_shrinks_context_before_giving_up() -> None:
    # 4 GB weights on 5.5 GB RAM (4.675 GB usable): 4096 tokens need 4.75 GB, 2048 fit
    est = fit.estimate(SHAPE, machine(ram=5.5), 4096)
    assert est.verdict == "cpu" and est.context == 2048
    assert "Context reduced from 4096 to 2048" in est.explanation
    est = fit.estimate(SHAPE, machine(ram=4), 4096)
    assert est.verdict == "no" and not est.runs and "won't fit" in est.explanation


def test_unified_memory_counts_once() -> None:
    est = fit.estimate(SHAPE, machine(ram=16, gpu_free=16, unified=True), 4096)
    assert est.verdict == "gpu" and "unified memory" in est.explanation


def test_catalog_shape_is_close_to_the_gguf_shape(bundled_gguf: Path) -> None:
    from_file = fit.ModelShape.from_gguf(gguf.inspect(bundled_gguf))
    from_catalog = fit.shape_from_catalog(catalog.load().get("smollm2-135m-instruct-q4_1"))
    hw = machine(ram=16)
    a, b = fit.estimate(from_file, hw, 4096), fit.estimate(from_catalog, hw, 4096)
    assert a.kv_bytes == b.kv_bytes
    assert abs(a.needed_bytes - b.needed_bytes) / a.needed_bytes < 0.05


def test_every_catalog_model_gets_a_sentence() -> None:
    hw = machine(ram=8, gpu_free=6)
    for m in catalog.load().models:
        if m.format != "gguf":
            continue
        est = fit.estimate(fit.shape_from_catalog(m), hw, 4096)
        assert est.explanation.startswith("needs ") and est.explanation.endswith(".")


def test_this_machine_is_detected() -> None:
    hw = hardware.detect()
    assert hw.ram_total > hw.ram_available > 0
    assert hw.cpu_logical >= hw.cpu_physical >= 1
    if not hw.usable_gpus:
        assert hw.gpu_backend == "CPU"


@pytest.mark.parametrize("ctx", [2048, 8192])
def test_estimate_matches_the_measured_memory_of_the_bundled_model(
    bundled_gguf: Path, ctx: int
) -> None:
    import psutil

    from engine.runtime.params import ChatMessage, ChatRequest, LoadParams, SamplingParams

    shape = fit.ModelShape.from_gguf(gguf.inspect(bundled_gguf))
    runtime = new_runtime()
    try:
        runtime.load(LoadParams(str(bundled_gguf), context_length=ctx, gpu_layers=0))
        request = ChatRequest(
            messages=(ChatMessage("user", "hello " * 600),),
            sampling=SamplingParams(max_tokens=8, seed=1),
        )
        for _ in runtime.stream_chat(request):
            pass
        assert runtime.worker_pid is not None
        rss = psutil.Process(runtime.worker_pid).memory_info().rss
    finally:
        runtime.close()
    est = fit.estimate(shape, machine(ram=16), ctx)
    assert est.context == ctx
    assert 0.85 * rss < est.needed_bytes < 1.25 * rss, (rss / MB, est.needed_bytes / MB)
