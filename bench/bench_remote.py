"""Answer latency through a remote model server against the same model run locally, in one run.

    .venv/bin/python bench/bench_remote.py [--rounds 5] [--tokens 64]

llama-cpp-python's own OpenAI-compatible server (its `server` extra) serves the bundled model
on loopback in a child process; Hearth's local runtime loads the same file in its own worker.
Each round runs every way once, in turn, each with a fresh prompt (a nonce first, so no way
reuses another's KV cache), greedy, `--tokens` tokens:

  local (Hearth worker)     runtime.stream_chat on the local file
  server, openai client     the official `openai` client streaming from the server directly
  server, through Hearth    runtime.stream_chat on remote:127.0.0.1:PORT/smollm2

"server, through Hearth" against "server, openai client" is the overhead Hearth's remote path
adds (its reader thread, queue, guard and event translation); against "local" it is what a
server costs when both run on the same CPU (here they do: a real GPU box changes that side).
Per way, the median over rounds of TTFT and end-to-end tokens/s. The machine is shared and
noisy: read the ratios, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_api import timed  # noqa: E402
from engine import models, network, remote  # noqa: E402
from engine import paths as paths_module  # noqa: E402
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
from tests.model_servers import LlamaServer  # noqa: E402

PROMPT = "Write a long story about a lighthouse keeper and the sea."


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "remote.json")
    args = parser.parse_args()
    network.install("bench")
    import openai

    home = Path(tempfile.mkdtemp(prefix="hearth-bench-remote-"))
    paths = paths_module.resolve({"HEARTH_HOME": str(home)}).ensure()
    server = LlamaServer(bundled.CHAT.path(), n_ctx=4096).start()
    settings = Settings.load(None)
    settings.set("remote.servers", [server.url])
    remote.refresh(settings, paths)
    runtime = ModelRuntime(admit=models.gate(settings, paths), remote=remote.RemoteModels(settings))
    local = models.load_params(bundled.CHAT.id, settings, paths, threads=2)
    remote_params = models.load_params(f"remote:127.0.0.1:{server.port}/smollm2", settings, paths)
    client = openai.OpenAI(base_url=server.url, api_key="none", max_retries=0, timeout=600)
    sampling = SamplingParams(temperature=0, max_tokens=args.tokens, repeat_penalty=1.0)

    def through_runtime(params: Any) -> Callable[[str], Any]:
        def run(nonce: str) -> Any:
            request = ChatRequest((ChatMessage("user", nonce + PROMPT),), sampling)
            for event in runtime.stream_chat(request, model=params):
                if isinstance(event, TextPiece):
                    yield event.text, None
                elif isinstance(event, Done):
                    yield "", event.stats.generated_tokens

        return run

    def direct(nonce: str) -> Any:
        count = 0
        for chunk in client.chat.completions.create(
            model="smollm2",
            messages=[{"role": "user", "content": nonce + PROMPT}],
            stream=True,
            temperature=0,
            max_tokens=args.tokens,
            extra_body={"repeat_penalty": 1.0},
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                count += 1
                yield chunk.choices[0].delta.content, None
        yield "", count

    ways: dict[str, Callable[[str], Any]] = {
        "local (Hearth worker)": through_runtime(local),
        "server, openai client": direct,
        "server, through Hearth": through_runtime(remote_params),
    }
    raw: dict[str, list[dict[str, float]]] = {name: [] for name in ways}
    try:
        for way in ways.values():  # warm-up: loads, connections, first-call imports
            timed(lambda w=way: w("(warm-up) "))
        for r in range(args.rounds):
            for i, (name, way) in enumerate(ways.items()):
                raw[name].append(timed(lambda w=way, n=f"(run {r}-{i}) ": w(n)))
    finally:
        client.close()
        runtime.close()
        server.stop()
    median = {
        name: {k: statistics.median(run[k] for run in runs) for k in ("ttft_ms", "end_to_end")}
        for name, runs in raw.items()
    }
    direct_row = median["server, openai client"]
    print(f"bundled model, {args.tokens} tokens greedy, median of {args.rounds} rounds")
    header = f"{'way':24} {'TTFT ms':>8} {'end-to-end t/s':>15} {'x openai client (e2e)':>22}"
    print(header)
    print("-" * len(header))
    for name, row in median.items():
        ratio = row["end_to_end"] / direct_row["end_to_end"]
        print(f"{name:24} {row['ttft_ms']:8.1f} {row['end_to_end']:15.1f} {ratio:22.3f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps({"tokens": args.tokens, "rounds": args.rounds, "raw": raw, "median": median})
    )
    print(f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
