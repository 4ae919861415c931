"""What the app around llama.cpp costs while decoding: three ways to decode 128 tokens, in turn.

    .venv/bin/python bench/bench_decode_overhead.py [--model PATH] [--rounds 6]

  llama-bench   llama.cpp's own tg128 (bash bench/build_llama_bench.sh), flash attention off
  raw loop      llama_decode one token at a time through llama-cpp-python's library, in this
                process, nothing else per token: the floor for any Python engine on this build
  engine        Hearth's engine as the app uses it (worker process, client, a greedy answer)

The three take turns in a rotating order each round; ratios to llama-bench are taken within a
round, then the median. The gap between "raw loop" and "engine" is what the engine's process,
its per-token work and its messages to the app cost. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_inference import LLAMA_BENCH, N_DECODE, SHORT, EngineBench  # noqa: E402

from engine import llama_build  # noqa: E402
from engine.models import bundled  # noqa: E402
from engine.runtime import ChatMessage, ChatRequest, SamplingParams  # noqa: E402
from engine.runtime.params import default_threads  # noqa: E402


def main() -> int:
    import llama_cpp as ll
    from llama_cpp import Llama

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument(
        "--json", type=Path, default=ROOT / "bench" / "results" / "decode_overhead.json"
    )
    args = parser.parse_args()
    model = str(args.model or bundled.CHAT.path())

    engine = EngineBench(Path(model), args.threads, 0)
    llama_build.load_backends()
    llm = Llama(
        model_path=model,
        n_ctx=8192,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        n_batch=512,
        n_ubatch=512,
        verbose=False,
    )
    one = ll.llama_batch_init(1, 0, 1)
    one.n_tokens, one.n_seq_id[0], one.logits[0] = 1, 1, 1
    one.seq_id[0][0] = 0
    memory = ll.llama_get_memory(llm.ctx)

    def raw_loop(_r: int) -> float:
        ll.llama_memory_clear(memory, True)
        t0 = time.perf_counter()
        for i in range(N_DECODE):
            one.token[0] = 100 + i
            one.pos[0] = i
            ll.llama_decode(llm.ctx, one)
            ll.llama_synchronize(llm.ctx)
        return N_DECODE / (time.perf_counter() - t0)

    def llama_bench(_r: int) -> float:
        argv = [str(LLAMA_BENCH), "-m", model, "-t", str(args.threads), "-p", "0"]
        argv += ["-n", str(N_DECODE), "-r", "1", "-fa", "0", "-o", "json"]
        out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=600)
        return float(json.loads(out.stdout)[0]["avg_ts"])

    def hearth(r: int) -> float:
        greedy = SamplingParams(temperature=0, max_tokens=N_DECODE, repeat_penalty=1.0)
        request = ChatRequest((ChatMessage("user", f"({r}) {SHORT}"),), greedy)
        *_, done = engine.rt.stream_chat(request)
        return float(done.stats.tokens_per_s)

    ways: list[tuple[str, Callable[[int], float]]] = [
        ("llama-bench", llama_bench),
        ("raw loop", raw_loop),
        ("engine", hearth),
    ]
    runs: dict[str, list[float]] = {name: [] for name, _ in ways}
    try:
        for r in range(args.rounds):
            for name, way in ways[r % 3 :] + ways[: r % 3]:
                runs[name].append(way(r))
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    finally:
        engine.close()
        llm.close()

    base = runs["llama-bench"]
    print(f"model {Path(model).name}, threads {args.threads}, {args.rounds} rounds")
    print(f"{'way':14} {'decode t/s':>11} {'x llama-bench (min-max)':>26}")
    summary = {}
    for name, values in runs.items():
        ratios = [v / b for v, b in zip(values, base, strict=True)]
        summary[name] = {"tokens_per_s": statistics.median(values), "x": ratios}
        spread = f"{statistics.median(ratios):.3f} ({min(ratios):.2f}-{max(ratios):.2f})"
        print(f"{name:14} {statistics.median(values):11.1f} {spread:>26}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"model": model, "runs": runs, "summary": summary}, indent=2))
    print(f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
