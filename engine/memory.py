"""How much memory a model needs, and how much of it fits on a GPU: the arithmetic behind
the fit verdict (engine.models.fit) and the automatic GPU layers of a load (the runtime).

need = weights + KV cache at the chosen context + compute buffers + a fixed runtime overhead.

- Weights come from the GGUF's tensor sizes (or the catalog's file size before download). The
  token embedding and output matrix are "non-layer" bytes; the rest divides evenly over layers,
  which is how llama.cpp offloads (n_gpu_layers counts repeating layers).
- KV cache = 2 (K and V) x layers x context x kv_heads x head_dim x bytes per element (f16: 2).
- Compute buffers are estimated from the batch (activations) and the vocabulary (logits);
  Hearth leaves flash attention off (llama-cpp-python's default), so attention scores add
  some context x batch bytes the calibration below absorbs at common contexts.
The constants below were calibrated on the bundled model's measured memory (worker RSS after a
prompt: 236 MB at 2k context, 377 MB at 8k; the estimate says 243 and 385 MB) and are checked
again by tests/engine/test_fit.py.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from engine.gguf import GGUFInfo
from engine.hardware import GPU, Hardware

RUNTIME_OVERHEAD = 80 * 1024 * 1024  # the worker process, llama.cpp's own allocations
KV_BYTES = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32, "f32": 4.0}
USABLE_RAM = 0.85  # leave room for the OS and the app
USABLE_VRAM = 0.90  # drivers and other programs keep some
MIN_CONTEXT = 1024
BATCH = 512


@dataclass(frozen=True)
class ModelShape:
    """The numbers the estimate needs, from a GGUF header or a catalog entry."""

    name: str
    weights_bytes: int
    non_layer_bytes: int  # token embedding + output head
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab_size: int
    max_context: int
    embedding_length: int

    @classmethod
    def from_gguf(cls, info: GGUFInfo) -> ModelShape:
        layers = info.block_count or 1
        heads = info.head_count or 1
        emb = info.embedding_length or 0
        arch = info.architecture
        head_dim = int(info.metadata.get(f"{arch}.attention.key_length") or emb // heads or 1)
        non_layer = sum(t.n_bytes for t in info.tensors if not t.name.startswith("blk."))
        vocab = int(info.metadata.get(f"{arch}.vocab_size") or 0)
        if not vocab:
            tokens = info.metadata.get("tokenizer.ggml.tokens")
            vocab = int(getattr(tokens, "length", 0) or 32000)
        return cls(
            info.name,
            info.tensor_bytes,
            non_layer,
            layers,
            heads,
            info.head_count_kv or heads,
            head_dim,
            vocab,
            info.context_length or 4096,
            emb or head_dim * heads,
        )

    @property
    def layer_bytes(self) -> float:
        return max(self.weights_bytes - self.non_layer_bytes, 0) / self.layers

    def kv_bytes(self, context: int, kv_type: str = "f16") -> int:
        return int(2 * self.layers * context * self.kv_heads * self.head_dim * KV_BYTES[kv_type])

    def compute_bytes(self, context: int, batch: int = BATCH) -> int:
        # llama.cpp's graph for one batch: activations of about 16 f32 vectors per token, and
        # logits only for the tokens that are output (the score matrix is left to the
        # calibration: see the module's note).
        activations = batch * self.embedding_length * 4 * 16
        return activations + self.vocab_size * 4 * 8


@dataclass(frozen=True)
class FitEstimate:
    verdict: str  # "gpu", "partial", "cpu", "no"
    gpu_layers: int  # for LoadParams.gpu_layers: -1 all, 0 none
    layers: int
    context: int
    needed_bytes: int
    weights_bytes: int
    kv_bytes: int
    compute_bytes: int
    device: str
    available_bytes: int
    explanation: str

    @property
    def runs(self) -> bool:
        return self.verdict != "no"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 0.95e9 else f"{n / 1e6:.0f} MB"


def _needed(shape: ModelShape, context: int, kv_type: str) -> tuple[int, int, int]:
    kv = shape.kv_bytes(context, kv_type)
    compute = shape.compute_bytes(context)
    return shape.weights_bytes + kv + compute + RUNTIME_OVERHEAD, kv, compute


def estimate(
    shape: ModelShape,
    hw: Hardware,
    context: int | None = None,
    kv_type: str = "f16",
    use_gpu: bool = True,
) -> FitEstimate:
    """The verdict for `shape` on `hw` at `context` tokens, shrinking the context if that helps."""
    wanted = min(context or 4096, shape.max_context)
    candidates = [wanted]
    while candidates[-1] // 2 >= MIN_CONTEXT:
        candidates.append(candidates[-1] // 2)
    result = None
    for ctx in candidates:
        result = _estimate_at(shape, hw, ctx, kv_type, use_gpu)
        if result.runs:
            if ctx < wanted:
                result = _with_note(
                    result, f" Context reduced from {wanted} to {ctx} tokens to fit."
                )
            return result
    assert result is not None
    return _estimate_at(shape, hw, wanted, kv_type, use_gpu)


def _with_note(est: FitEstimate, note: str) -> FitEstimate:
    return FitEstimate(**{**est.as_dict(), "explanation": est.explanation + note})


def _estimate_at(
    shape: ModelShape, hw: Hardware, ctx: int, kv_type: str, use_gpu: bool
) -> FitEstimate:
    need, kv, compute = _needed(shape, ctx, kv_type)
    ram = int(hw.ram_available * USABLE_RAM)
    gpu = _best_gpu(hw) if use_gpu else None
    base = {
        "layers": shape.layers,
        "context": ctx,
        "needed_bytes": need,
        "weights_bytes": shape.weights_bytes,
        "kv_bytes": kv,
        "compute_bytes": compute,
    }

    if gpu is not None and not gpu.unified:
        vram = int(gpu.memory_free * USABLE_VRAM)
        on_gpu_all = need - RUNTIME_OVERHEAD
        if on_gpu_all <= vram:
            return FitEstimate(
                "gpu",
                -1,
                device=gpu.name,
                available_bytes=vram,
                **base,
                explanation=f"needs {gb(need)}; {gb(gpu.memory_free)} free on "
                f"{gpu.name}: all {shape.layers} layers on the GPU.",
            )
        kv_layer = kv / shape.layers
        room = vram - compute - shape.non_layer_bytes
        n = int(room // (shape.layer_bytes + kv_layer)) if room > 0 else 0
        n = max(0, min(n, shape.layers - 1))
        cpu_part = int(need - n * (shape.layer_bytes + kv_layer))
        if n > 0 and cpu_part <= ram:
            return FitEstimate(
                "partial",
                n,
                device=gpu.name,
                available_bytes=vram,
                **base,
                explanation=f"needs {gb(need)}; {gb(gpu.memory_free)} free on "
                f"{gpu.name}: {n} of {shape.layers} layers on the "
                "GPU, the rest on the CPU.",
            )
    if gpu is not None and gpu.unified:
        # Apple silicon: one pool; Metal may use about its recommended working set
        pool = min(int(gpu.memory_total * USABLE_VRAM), ram)
        if need <= pool:
            return FitEstimate(
                "gpu",
                -1,
                device=gpu.name,
                available_bytes=pool,
                **base,
                explanation=f"needs {gb(need)}; {gb(pool)} of unified memory "
                f"usable by {gpu.name}: all {shape.layers} layers "
                "on the GPU.",
            )
    if need <= ram:
        unusable = [g.name for g in hw.gpus if not g.usable]
        if hw.usable_gpus:
            why = "the GPU has too little free memory"
        elif unusable:  # `hearth doctor` gives the command that rebuilds llama.cpp for it
            why = f"{unusable[0]} is not usable by this build of llama.cpp (see hearth doctor)"
        else:
            why = "no GPU this build of llama.cpp can use"
        return FitEstimate(
            "cpu",
            0,
            device=hw.cpu_model or "CPU",
            available_bytes=ram,
            **base,
            explanation=f"needs {gb(need)}; {gb(hw.ram_available)} of RAM "
            f"available and {why}: runs on the CPU.",
        )
    where = f"{gb(hw.ram_available)} of RAM available"
    if gpu is not None:
        where += f" and {gb(gpu.memory_free)} free on {gpu.name}"
    return FitEstimate(
        "no",
        0,
        device=gpu.name if gpu else "CPU",
        available_bytes=ram,
        **base,
        explanation=f"needs {gb(need)} at {ctx} tokens of context; only {where}: won't fit.",
    )


def _best_gpu(hw: Hardware) -> GPU | None:
    usable = hw.usable_gpus
    return max(usable, key=lambda g: g.memory_free) if usable else None
