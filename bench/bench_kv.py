"""KV cache types and flash attention: memory at 8k and 32k context, and speed, against f16.

    .venv/bin/python bench/bench_kv.py [--prompt-tokens 1500] [--model PATH]

For each context (8k, 32k) and each setting (f16; f16 with flash attention; q8_0; q4_0, the
last two with flash attention, which llama.cpp needs to quantize the V cache), the model is
loaded fresh in Hearth's worker, given one prompt of about `--prompt-tokens` tokens (so the
cache is really written), then asked for 64 tokens greedy. Reported:

  worker MB        the worker's resident memory after the answer (psutil)
  KV MB (est.)     the fit estimate's figure for that context and type (engine/memory.py)
  prefill / decode tokens per second from the runtime's own stats
  x f16            against f16 without flash attention at the same context, same run

The machine is shared and noisy: read the ratios.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from engine import gguf, memory, models, network  # noqa: E402
from engine import paths as paths_module  # noqa: E402
from engine.models import bundled  # noqa: E402
from engine.runtime import (  # noqa: E402
    ChatMessage,
    ChatRequest,
    Done,
    LoadParams,
    ModelRuntime,
    SamplingParams,
)
from engine.settings import Settings  # noqa: E402

SETTINGS = (("f16", "off"), ("f16", "on"), ("q8_0", "on"), ("q4_0", "on"))
FILLER = (
    "The committee met on Tuesday to review the quarterly figures, the staffing plan and the "
    "maintenance schedule for the north and south buildings. "
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--prompt-tokens", type=int, default=1500)
    parser.add_argument("--contexts", default="8192,32768")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "kv.json")
    args = parser.parse_args()
    network.install("bench")
    model = args.model or bundled.CHAT.path()
    home = Path(tempfile.mkdtemp(prefix="hearth-bench-kv-"))
    paths = paths_module.resolve({"HEARTH_HOME": str(home)}).ensure()
    shape = memory.ModelShape.from_gguf(gguf.inspect(model))
    prompt = FILLER * max(1, args.prompt_tokens // 28)
    request = ChatRequest(
        (ChatMessage("user", prompt + "\nSummarise the above in one sentence."),),
        SamplingParams(temperature=0.0, max_tokens=64, repeat_penalty=1.0),
    )
    rows = []
    for context in (int(c) for c in args.contexts.split(",")):
        for kv, fa in SETTINGS:
            runtime = ModelRuntime(admit=models.gate(Settings.load(None), paths))
            try:
                runtime.load(
                    LoadParams(
                        str(model),
                        context_length=context,
                        threads=2,
                        gpu_layers=0,
                        kv_cache_type=kv,
                        flash_attention=fa,
                    )
                )
                done = next(e for e in runtime.stream_chat(request) if isinstance(e, Done))
                worker = psutil.Process(runtime.worker_pid).memory_info().rss / 2**20
            finally:
                runtime.close()
            rows.append(
                {
                    "context": context,
                    "kv": kv,
                    "flash_attention": fa,
                    "worker_mb": worker,
                    "kv_estimate_mb": shape.kv_bytes(context, kv) / 2**20,
                    "prompt_tokens": done.stats.prompt_tokens,
                    "prefill": done.stats.prefill_tokens_per_s,
                    "decode": done.stats.tokens_per_s,
                }
            )
            print(f"  {context} {kv} fa={fa}: done", file=sys.stderr)
    print(f"{model.name}, {rows[0]['prompt_tokens']}-token prompt, 64 tokens greedy, 2 threads")
    header = (
        f"{'context':>8} {'KV':>5} {'FA':>4} {'worker MB':>10} {'KV MB (est.)':>13} "
        f"{'prefill t/s':>12} {'decode t/s':>11} {'x f16 (mem / prefill / decode)':>31}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        base = next(
            b
            for b in rows
            if b["context"] == r["context"] and b["kv"] == "f16" and b["flash_attention"] == "off"
        )
        ratio = (
            f"{r['worker_mb'] / base['worker_mb']:.2f} / {r['prefill'] / base['prefill']:.2f} / "
            f"{r['decode'] / base['decode']:.2f}"
        )
        print(
            f"{r['context']:>8} {r['kv']:>5} {r['flash_attention']:>4} {r['worker_mb']:10.0f} "
            f"{r['kv_estimate_mb']:13.0f} {r['prefill']:12.1f} {r['decode']:11.1f} {ratio:>31}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"model": str(model), "rows": rows}, indent=1))
    print(f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
