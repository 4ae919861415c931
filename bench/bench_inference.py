"""Inference speed: our engine against llama-cpp-python used directly and llama.cpp's own
llama-bench, on the same GGUF and thread count, in one run. Prints a table and writes JSON.

    .venv/bin/python bench/bench_inference.py [--model PATH] [--threads N] [--repeats 3]
        [--gpu-layers N] [--llama-bench PATH] [--only engine,llama-bench]
    bash bench/build_llama_bench.sh   # once, to include llama-bench in the comparison

--gpu-layers N offloads N layers (99: all) in every system alike (llama-bench's -ngl), for a
GPU build; bench/gpu_device.sh runs it that way on a CUDA machine.

Measured per system, median of --repeats runs:
  prefill tok/s  a fresh ~512-token prompt (no KV reuse)
  decode tok/s   128 generated tokens after a short prompt, greedy, EOS ignored where possible
  TTFT ms        request to first text, short prompt, as the caller sees it
  stop ms        (engine only) stop() to the end of the stream, while generating and while
                 reading a ~4k-token prompt
The machine is shared and noisy: read the ratios, which are measured in the same run.
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


def open_runtime() -> ModelRuntime:
    """A runtime held to the policy of default settings (none): the bench names its file."""
    home = Path(tempfile.mkdtemp(prefix="hearth-bench-"))
    paths = paths_module.resolve({"HEARTH_HOME": str(home)})
    return ModelRuntime(admit=models.gate(Settings.load(None), paths))


def long_prompt(nonce: int, facts: int) -> str:
    # The nonce comes first so that no run can reuse another's KV cache.
    body = " ".join(f"Fact {i}: the lighthouse has {i + nonce} steps." for i in range(facts))
    return f"Run {nonce}. {body}\nSummarise."


def engine_runs(
    model: Path, threads: int, repeats: int, gpu_layers: int = 0
) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {
        k: [] for k in ("prefill", "decode", "ttft", "stop_gen", "stop_prefill")
    }
    with open_runtime() as rt:
        rt.load(
            LoadParams(
                str(model),
                context_length=8192,
                threads=threads,
                batch_size=512,
                gpu_layers=gpu_layers,
            )
        )
        greedy = SamplingParams(temperature=0, max_tokens=N_DECODE, repeat_penalty=1.0)
        for r in range(repeats):
            # prefill: ~512 tokens, nothing cached
            req = ChatRequest(
                (ChatMessage("user", long_prompt(r * 1000 + 1, 40)),),
                SamplingParams(temperature=0, max_tokens=1),
            )
            *_, done = rt.stream_chat(req)
            out["prefill"].append(done.stats.prefill_tokens_per_s)
            # decode + TTFT: short prompt, fresh (different nonce)
            req = ChatRequest((ChatMessage("user", f"({r}) {SHORT}"),), greedy)
            *_, done = rt.stream_chat(req)
            out["decode"].append(done.stats.tokens_per_s)
            out["ttft"].append(done.stats.time_to_first_token_s * 1000)
            # stop while generating
            stream = rt.stream_chat(
                ChatRequest(
                    (ChatMessage("user", f"[{r}] {SHORT}"),),
                    SamplingParams(temperature=0.8, max_tokens=4000),
                )
            )
            pieces = 0
            for event in stream:
                if isinstance(event, TextPiece):
                    pieces += 1
                    if pieces == 20:
                        t_stop = time.perf_counter()
                        rt.stop()
                elif isinstance(event, Done):
                    out["stop_gen"].append((time.perf_counter() - t_stop) * 1000)
            # stop during a ~4k-token prompt
            req = ChatRequest((ChatMessage("user", long_prompt(r * 1000 + 7, 330)),), greedy)
            fired: list[float] = []

            def fire(fired: list[float] = fired) -> None:
                time.sleep(0.5)
                fired.append(time.perf_counter())
                rt.stop()

            timer = threading.Thread(target=fire)
            timer.start()
            *_, done = rt.stream_chat(req)
            ended = time.perf_counter()
            timer.join()
            if done.stats.generated_tokens == 0:  # it was really inside the prompt
                out["stop_prefill"].append((ended - fired[0]) * 1000)
    return out


def direct_runs(
    model: Path, threads: int | None, repeats: int, gpu_layers: int = 0
) -> dict[str, list[float]]:
    """llama-cpp-python's high-level API as an app would use it (threads=None: its defaults)."""
    from llama_cpp import Llama

    llama_build.load_backends()  # a portable build has no CPU backend until one is loaded
    kwargs: dict[str, Any] = {"n_ctx": 8192, "verbose": False, "n_gpu_layers": gpu_layers}
    if threads is not None:
        kwargs.update(n_threads=threads, n_threads_batch=threads)
    llm = Llama(model_path=str(model), **kwargs)
    out: dict[str, list[float]] = {"prefill": [], "decode": [], "ttft": []}
    for r in range(repeats):
        llm.reset()
        prompt = llm.tokenize(long_prompt(r * 1000 + 1, 40).encode())
        t0 = time.perf_counter()
        llm.eval(prompt)
        out["prefill"].append(len(prompt) / (time.perf_counter() - t0))
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
        out["ttft"].append((t_first - t0) * 1000)
        out["decode"].append((n - 1) / (t_end - t_first))
    llm.close()
    return out


def llama_bench_runs(
    model: Path, threads: int, repeats: int, gpu_layers: int = 0, binary: Path = LLAMA_BENCH
) -> dict[str, list[float]] | None:
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
            str(repeats),
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    )
    rows = json.loads(result.stdout)
    out: dict[str, list[float]] = {"prefill": [], "decode": []}
    for row in rows:
        key = "prefill" if row["n_prompt"] > 0 else "decode"
        out[key].extend(row.get("samples_ts") or [row["avg_ts"]])
    return out


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "inference.json")
    parser.add_argument("--gpu-layers", type=int, default=0)
    parser.add_argument("--llama-bench", type=Path, default=LLAMA_BENCH)
    parser.add_argument("--only", default="engine,llama-bench,direct")
    args = parser.parse_args()
    model = args.model or bundled.CHAT.path()
    only = set(args.only.split(","))
    ngl = args.gpu_layers

    systems: dict[str, dict[str, list[float]] | None] = {}
    # Interleave nothing heavy: each system runs alone, one after another.
    systems["llama-bench (llama.cpp)"] = (
        llama_bench_runs(model, args.threads, args.repeats, ngl, args.llama_bench)
        if "llama-bench" in only
        else None
    )
    systems["hearth engine"] = engine_runs(model, args.threads, args.repeats, ngl)
    if "direct" in only:
        systems["llama-cpp-python, same threads"] = direct_runs(
            model, args.threads, args.repeats, ngl
        )
        systems["llama-cpp-python, defaults"] = direct_runs(model, None, args.repeats, ngl)

    summary: dict[str, dict[str, float | None]] = {
        name: ({k: median(v) for k, v in runs.items()} if runs is not None else {})
        for name, runs in systems.items()
    }
    base = summary["llama-bench (llama.cpp)"] or None

    print(
        f"model {model.name}, threads {args.threads}, GPU layers {ngl}, "
        f"median of {args.repeats} runs"
    )
    header = (
        f"{'system':34} {'prefill t/s':>12} {'decode t/s':>11} {'TTFT ms':>8} "
        f"{'x llama-bench (pp / tg)':>24}"
    )
    print(header)
    print("-" * len(header))
    for name, row in summary.items():
        if not row:
            print(f"{name:34} {'(not built: bash bench/build_llama_bench.sh)':>40}")
            continue
        ratio = ""
        if base and row.get("prefill") and row.get("decode"):
            ratio = f"{row['prefill'] / base['prefill']:.2f} / {row['decode'] / base['decode']:.2f}"
        ttft = row.get("ttft")
        print(
            f"{name:34} {row.get('prefill') or 0:12.1f} {row.get('decode') or 0:11.1f} "
            f"{(f'{ttft:.1f}' if ttft is not None else '-'):>8} {ratio:>24}"
        )
    eng = summary["hearth engine"]
    print(
        f"\nengine stop latency: while generating {eng['stop_gen']:.1f} ms, "
        f"during a ~4k-token prompt {eng['stop_prefill'] or float('nan'):.1f} ms (median)"
    )

    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "model": str(model),
                "threads": args.threads,
                "repeats": args.repeats,
                "gpu_layers": ngl,
                "raw": systems,
                "median": summary,
            },
            indent=2,
        )
    )
    print(f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
