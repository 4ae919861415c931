"""Inference speed: our engine against llama-cpp-python used directly and llama.cpp's own
llama-bench, on the same GGUF and thread count, in one run. Prints a table and writes JSON.

    .venv/bin/python bench/bench_inference.py [--model PATH] [--threads N] [--rounds 5]
        [--gpu-layers N] [--llama-bench PATH] [--only engine,llama-bench,direct]
    bash bench/build_llama_bench.sh   # once, to include llama-bench in the comparison

--gpu-layers N offloads N layers (99: all) in every system alike (llama-bench's -ngl), for a
GPU build; bench/gpu_device.sh runs it that way on a CUDA machine.

The systems take turns: each round runs llama-bench once (its own warm-up, then pp512 and
tg128), then the engine, then llama-cpp-python, so a slow spell of this shared machine lands
on all of them. Ratios to llama-bench are taken within each round; the table gives their
median and range over the rounds.

Measured per system and round:
  prefill tok/s  a fresh prompt of at most 512 new tokens, one batch as in pp512
  decode tok/s   128 generated tokens after a short prompt, greedy, EOS ignored where possible
  TTFT ms        request to first text, short prompt, as the caller sees it
  stop ms        (engine only) stop() to the end of the stream, while generating and while
                 reading a ~4k-token prompt
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import llama_build, models  # noqa: E402
from engine import paths as paths_module  # noqa: E402
from engine.models import bundled  # noqa: E402
from engine.runtime import (  # noqa: E402
    ChatMessage,
    ChatRequest,
    Done,
    LoadParams,
    ModelRuntime,
    SamplingParams,
    TextPiece,
)
from engine.runtime.params import default_threads  # noqa: E402
from engine.settings import Settings  # noqa: E402

LLAMA_BENCH = ROOT / "bench" / ".llama-bench" / "bin" / "llama-bench"
SHORT = "Write a long story about a lighthouse keeper and the sea."
N_DECODE = 128
PREFILL_FACTS = 37  # a prompt of at most 512 new tokens with the bundled model's template


def open_runtime() -> ModelRuntime:
    """A runtime held to the policy of default settings (none): the bench names its file."""
    home = Path(tempfile.mkdtemp(prefix="hearth-bench-"))
    paths = paths_module.resolve({"HEARTH_HOME": str(home)})
    return ModelRuntime(admit=models.gate(Settings.load(None), paths))


def long_prompt(nonce: int, facts: int) -> str:
    # The nonce comes first so that no run can reuse another's KV cache; it has a fixed width
    # so every round's prompt has the same number of tokens.
    body = " ".join(f"Fact {i}: the lighthouse has {i + 3} steps." for i in range(facts))
    return f"Run {nonce:06d}. {body}\nSummarise."


class EngineBench:
    """Hearth's engine, loaded once; `round` measures one round."""

    def __init__(self, model: Path, threads: int, gpu_layers: int) -> None:
        self.rt = open_runtime()
        params = LoadParams(
            str(model),
            context_length=8192,
            threads=threads,
            batch_size=512,
            gpu_layers=gpu_layers,
        )
        self.rt.load(params)
        self.flash_attention = params.uses_flash_attention(gpu_layers)

    def close(self) -> None:
        self.rt.close()

    def round(self, r: int) -> dict[str, float]:
        rt = self.rt
        out: dict[str, float] = {}
        greedy = SamplingParams(temperature=0, max_tokens=N_DECODE, repeat_penalty=1.0)
        # prefill: nothing cached past the template's first tokens (a new nonce), at most 512
        # new tokens so it is one batch, as pp512 is
        req = ChatRequest(
            (ChatMessage("user", long_prompt(r * 1000 + 1, PREFILL_FACTS)),),
            SamplingParams(temperature=0, max_tokens=1),
        )
        *_, done = rt.stream_chat(req)
        out["prefill"] = done.stats.prefill_tokens_per_s
        out["prefill_tokens"] = done.stats.prompt_tokens - done.stats.cached_tokens
        # decode + TTFT: short prompt, fresh (different nonce)
        req = ChatRequest((ChatMessage("user", f"({r}) {SHORT}"),), greedy)
        *_, done = rt.stream_chat(req)
        out["decode"] = done.stats.tokens_per_s
        out["decode_tokens"] = done.stats.generated_tokens
        out["ttft"] = done.stats.time_to_first_token_s * 1000
        # the chat defaults (temperature, top-k/p, min-p, repetition penalty)
        req = ChatRequest(
            (ChatMessage("user", f"<{r}> {SHORT}"),), SamplingParams(max_tokens=N_DECODE)
        )
        *_, done = rt.stream_chat(req)
        out["decode_sampled"] = done.stats.tokens_per_s
        # stop while generating
        stream = rt.stream_chat(
            ChatRequest(
                (ChatMessage("user", f"[{r}] {SHORT}"),),
                SamplingParams(temperature=0.8, max_tokens=4000),
            )
        )
        pieces = 0
        t_stop = 0.0
        for event in stream:
            if isinstance(event, TextPiece):
                pieces += 1
                if pieces == 20:
                    t_stop = time.perf_counter()
                    rt.stop()
            elif isinstance(event, Done):
                out["stop_gen"] = (time.perf_counter() - t_stop) * 1000
        # stop during a ~4k-token prompt
        req = ChatRequest((ChatMessage("user", long_prompt(r * 1000 + 7, 330)),), greedy)
        fired: list[float] = []

        def fire() -> None:
            time.sleep(0.5)
            fired.append(time.perf_counter())
            rt.stop()

        timer = threading.Thread(target=fire)
        timer.start()
        *_, done = rt.stream_chat(req)
        ended = time.perf_counter()
        timer.join()
        if done.stats.generated_tokens == 0:  # it was really inside the prompt
            out["stop_prefill"] = (ended - fired[0]) * 1000
        return out


def direct_round(model: Path, threads: int | None, r: int, gpu_layers: int = 0) -> dict[str, float]:
    """llama-cpp-python's high-level API as an app would use it (threads=None: its defaults)."""
    from llama_cpp import Llama

    llama_build.load_backends()  # a portable build has no CPU backend until one is loaded
    kwargs: dict[str, Any] = {"n_ctx": 8192, "verbose": False, "n_gpu_layers": gpu_layers}
    if threads is not None:
        kwargs.update(n_threads=threads, n_threads_batch=threads)
    llm = Llama(model_path=str(model), **kwargs)
    out: dict[str, float] = {}
    try:
        prompt = llm.tokenize(long_prompt(r * 1000 + 1, PREFILL_FACTS).encode())
        t0 = time.perf_counter()
        llm.eval(prompt)
        out["prefill"] = len(prompt) / (time.perf_counter() - t0)
        llm.reset()
        t0 = time.perf_counter()
        t_first = None
        n = 0
        for chunk in llm.create_chat_completion(
            messages=[{"role": "user", "content": f"({r}) {SHORT}"}],
            temperature=0,
            max_tokens=N_DECODE,
            repeat_penalty=1.0,
            stream=True,
        ):
            if chunk["choices"][0]["delta"].get("content"):
                n += 1
                if t_first is None:
                    t_first = time.perf_counter()
        t_end = time.perf_counter()
        assert t_first is not None
        out["ttft"] = (t_first - t0) * 1000
        out["decode"] = (n - 1) / (t_end - t_first)
    finally:
        llm.close()
    return out


def llama_bench_round(
    model: Path,
    threads: int,
    gpu_layers: int = 0,
    binary: Path = LLAMA_BENCH,
    flash_attention: bool = False,
) -> dict[str, float] | None:
    """One pp512 and one tg128, with flash attention as the engine runs it (llama-bench's
    own default, auto, turns it on wherever it can; the engine's auto leaves it off on the
    CPU, where it made decoding after a long prompt several times slower)."""
    if not binary.exists():
        return None
    result = subprocess.run(
        [
            str(binary),
            "-ngl",
            str(gpu_layers),
            "-m",
            str(model),
            "-t",
            str(threads),
            "-p",
            "512",
            "-n",
            str(N_DECODE),
            "-r",
            "1",
            "-fa",
            "1" if flash_attention else "0",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    )
    out: dict[str, float] = {}
    for row in json.loads(result.stdout):
        out["prefill" if row["n_prompt"] > 0 else "decode"] = row["avg_ts"]
    return out


def spread(values: list[float]) -> tuple[float, float, float] | None:
    """(median, min, max), or None when nothing was measured."""
    return (statistics.median(values), min(values), max(values)) if values else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "inference.json")
    parser.add_argument("--gpu-layers", type=int, default=0)
    parser.add_argument("--llama-bench", type=Path, default=LLAMA_BENCH)
    parser.add_argument("--only", default="engine,llama-bench,direct")
    args = parser.parse_args()
    model = args.model or bundled.CHAT.path()
    only = set(args.only.split(","))
    ngl = args.gpu_layers

    names = ["llama-bench (llama.cpp)", "hearth engine"]
    if "direct" in only:
        names += ["llama-cpp-python, same threads", "llama-cpp-python, defaults"]
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    engine = EngineBench(model, args.threads, ngl)
    try:
        for r in range(args.rounds):
            if "llama-bench" in only:
                lb = llama_bench_round(
                    model, args.threads, ngl, args.llama_bench, engine.flash_attention
                )
                if lb is not None:
                    rounds["llama-bench (llama.cpp)"].append(lb)
            rounds["hearth engine"].append(engine.round(r))
            if "direct" in only:
                rounds["llama-cpp-python, same threads"].append(
                    direct_round(model, args.threads, r, ngl)
                )
                rounds["llama-cpp-python, defaults"].append(direct_round(model, None, r, ngl))
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    finally:
        engine.close()

    base = rounds["llama-bench (llama.cpp)"]
    summary: dict[str, dict[str, Any]] = {}
    for name, runs in rounds.items():
        row: dict[str, Any] = {}
        for key in sorted({k for run in runs for k in run}):
            row[key] = spread([run[key] for run in runs if key in run])
        if base and runs:
            for key in ("prefill", "decode"):
                row[f"x_{key}"] = spread(
                    [run[key] / b[key] for run, b in zip(runs, base, strict=True) if key in run]
                )
            if "decode_sampled" in row:
                row["x_decode_sampled"] = spread(
                    [run["decode_sampled"] / b["decode"] for run, b in zip(runs, base, strict=True)]
                )
        summary[name] = row

    print(f"model {model.name}, threads {args.threads}, GPU layers {ngl}, {args.rounds} rounds")
    header = (
        f"{'system':34} {'prefill t/s':>12} {'decode t/s':>11} {'TTFT ms':>8} "
        f"{'x llama-bench prefill':>24} {'x llama-bench decode':>24}"
    )
    print(header)
    print("-" * len(header))

    def ratio(value: tuple[float, float, float] | None) -> str:
        return f"{value[0]:.2f} ({value[1]:.2f}-{value[2]:.2f})" if value else "-"

    for name, row in summary.items():
        if not row:
            print(f"{name:34} {'(not built: bash bench/build_llama_bench.sh)':>40}")
            continue
        ttft = row.get("ttft")
        print(
            f"{name:34} {row['prefill'][0]:12.1f} {row['decode'][0]:11.1f} "
            f"{(f'{ttft[0]:.1f}' if ttft else '-'):>8} "
            f"{ratio(row.get('x_prefill')):>24} {ratio(row.get('x_decode')):>24}"
        )
    eng = summary["hearth engine"]
    print(
        f"\nengine, chat sampling defaults: {eng['decode_sampled'][0]:.1f} t/s decode, "
        f"x llama-bench tg {ratio(eng.get('x_decode_sampled'))}"
    )
    print(
        f"engine prefill prompt: {eng['prefill_tokens'][0]:.0f} new tokens; stop latency: "
        f"while generating {eng['stop_gen'][0]:.1f} ms, during a ~4k-token prompt "
        f"{eng['stop_prefill'][0] if eng.get('stop_prefill') else float('nan'):.1f} ms (median)"
    )
    print("(median over rounds, min-max in brackets; ratios taken within each round)")

    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "model": str(model),
                "threads": args.threads,
                "rounds": args.rounds,
                "gpu_layers": ngl,
                "raw": rounds,
                "summary": summary,
            },
            indent=2,
        )
    )
    print(f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
