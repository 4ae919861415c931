"""Tokens/s through the local API against the in-process engine, in one run, on one runtime.

    .venv/bin/python bench/bench_api.py [--model PATH] [--rounds 5] [--tokens 128]

The API server runs in this process on the same `ModelRuntime` as the in-process calls (as in
the app, where the window and the server share one model); the official `openai` client talks
to it over loopback. Each round runs every way once, in turn, each with a fresh prompt (a nonce
first, so no way reuses another's KV cache), greedy, `--tokens` tokens:

  in-process stream   runtime.stream_chat, timed by the caller
  API stream          chat.completions with stream=True (SSE)
  API whole           chat.completions, one JSON response

Per way, the median over rounds of:
  TTFT ms       request to the first text the caller sees
  decode t/s    (tokens - 1) / (last text - first text), as the caller sees it
  end-to-end    tokens / (request to complete answer)
The machine is shared and noisy: read the ratios against in-process, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import models, network  # noqa: E402
from engine import paths as paths_module  # noqa: E402
from engine.api import token  # noqa: E402
from engine.api.backend import Backend  # noqa: E402
from engine.api.server import ApiServer  # noqa: E402
from engine.models import bundled  # noqa: E402
from engine.runtime import (  # noqa: E402
    ChatMessage,
    ChatRequest,
    Done,
    ModelRuntime,
    SamplingParams,
    TextPiece,
)
from engine.settings import Settings  # noqa: E402

PROMPT = "Write a long story about a lighthouse keeper and the sea."


def timed(pieces: Callable[[], Any]) -> dict[str, float]:
    """Run one answer; `pieces()` yields (text, tokens or None) as the caller receives them,
    with the token count on the last item."""
    t0 = time.perf_counter()
    t_first = t_last = None
    tokens = 0
    for text, count in pieces():
        now = time.perf_counter()
        if text:
            t_first = t_first or now
            t_last = now
        if count is not None:
            tokens = count
    t_end = time.perf_counter()
    assert t_first is not None and t_last is not None and tokens > 1
    return {
        "ttft_ms": (t_first - t0) * 1000,
        "decode": (tokens - 1) / (t_last - t_first) if t_last > t_first else 0.0,
        "end_to_end": tokens / (t_end - t0),
        "tokens": tokens,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "api.json")
    args = parser.parse_args()
    network.install("bench")
    import openai

    model = args.model or bundled.CHAT.path()
    home = Path(tempfile.mkdtemp(prefix="hearth-bench-api-"))
    paths = paths_module.resolve({"HEARTH_HOME": str(home)}).ensure()
    settings = Settings.load(None)
    # The API names models by id; register this one under an id if it is not bundled.
    model_id = bundled.CHAT.id if model == bundled.CHAT.path() else model.stem
    if model_id != bundled.CHAT.id:
        models.Registry(paths).put(model_id, {"path": str(model), "source": "imported"})
    runtime = ModelRuntime(admit=models.gate(settings, paths))
    runtime.load(models.load_params(model_id, settings, paths))
    server = ApiServer(Backend(runtime, settings, paths, lambda: None), settings, paths, port=0)
    server.start()
    client = openai.OpenAI(
        base_url=server.url, api_key=token.read_or_create(paths), max_retries=0, timeout=600
    )
    sampling = SamplingParams(temperature=0, max_tokens=args.tokens, repeat_penalty=1.0)
    body = {
        "model": model_id,
        "temperature": 0,
        "max_tokens": args.tokens,
        "extra_body": {"repeat_penalty": 1.0},
    }

    def in_process(nonce: str) -> Any:
        request = ChatRequest((ChatMessage("user", nonce + PROMPT),), sampling)
        for event in runtime.stream_chat(request):
            if isinstance(event, TextPiece):
                yield event.text, None
            elif isinstance(event, Done):
                yield "", event.stats.generated_tokens

    def api_stream(nonce: str) -> Any:
        for chunk in client.chat.completions.create(
            messages=[{"role": "user", "content": nonce + PROMPT}],
            stream=True,
            stream_options={"include_usage": True},
            **body,
        ):
            if chunk.choices:
                yield chunk.choices[0].delta.content or "", None
            elif chunk.usage is not None:
                yield "", chunk.usage.completion_tokens

    def api_whole(nonce: str) -> Any:
        out = client.chat.completions.create(
            messages=[{"role": "user", "content": nonce + PROMPT}], **body
        )
        assert out.usage is not None
        yield out.choices[0].message.content or "", out.usage.completion_tokens

    ways: dict[str, Callable[[str], Any]] = {
        "in-process stream": in_process,
        "API stream": api_stream,
        "API whole": api_whole,
    }
    raw: dict[str, list[dict[str, float]]] = {name: [] for name in ways}
    try:
        for _ in range(2):  # warm-up: the connection pool, first-call imports, caches
            for way in ways.values():
                timed(lambda w=way: w("(warm-up) "))
        for r in range(args.rounds):
            for i, (name, way) in enumerate(ways.items()):
                nonce = f"(run {r}-{i}) "
                raw[name].append(timed(lambda w=way, n=nonce: w(n)))
    finally:
        client.close()
        server.stop()
        runtime.close()

    median = {
        name: {
            k: statistics.median(run[k] for run in runs)
            for k in ("ttft_ms", "decode", "end_to_end", "tokens")
        }
        for name, runs in raw.items()
    }
    base = median["in-process stream"]
    print(f"model {model.name}, {args.tokens} tokens greedy, median of {args.rounds} rounds")
    header = (
        f"{'way':20} {'TTFT ms':>8} {'decode t/s':>11} {'end-to-end t/s':>15} "
        f"{'x in-process (decode / e2e)':>28}"
    )
    print(header)
    print("-" * len(header))
    for name, row in median.items():
        e2e = row["end_to_end"] / base["end_to_end"]
        whole = name == "API whole"  # one response: no first-to-last text to time
        ratio = f"- / {e2e:.3f}" if whole else f"{row['decode'] / base['decode']:.3f} / {e2e:.3f}"
        decode = "-" if whole else f"{row['decode']:.1f}"
        print(f"{name:20} {row['ttft_ms']:8.1f} {decode:>11} {row['end_to_end']:15.1f} {ratio:>28}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "model": str(model),
                "tokens": args.tokens,
                "rounds": args.rounds,
                "raw": raw,
                "median": median,
            },
            indent=2,
        )
    )
    print(f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
