"""Prompt lookup decoding against plain decoding, on document answers and on free chat.

    .venv/bin/python bench/bench_lookup.py [--rounds 3] [--tokens 128] [--model PATH]

Document answers are built as Hearth builds them (engine/documents/prompting.py: its rules as
the system prompt, passages in <passage> blocks) from sections of this repository's docs/,
three passages each, with a question about the first one's heading; free chat is eight
everyday requests. Every prompt is answered three ways, in turn, by fresh workers:

  plain, FA off     what Hearth did before (plain decoding, no flash attention on the CPU)
  plain, FA on      plain decoding with flash attention, which drafting turns on
  lookup            drafts from the prompt (inference.lookup_decoding), flash attention on

at the bundled model's recommended sampling (temperature 0.2, seeded). Reported per set: the
median over prompts and rounds of effective tokens/s (generated tokens / time from the first
to the last token), the ratio to "plain, FA off" per prompt (then the median), and the share
of drafted tokens kept. The machine is shared and noisy: read the ratios.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import models, network  # noqa: E402
from engine import paths as paths_module  # noqa: E402
from engine.documents import prompting  # noqa: E402
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

WAYS = {
    "plain, FA off": {"lookup_draft": 0, "flash_attention": "off"},
    "plain, FA on": {"lookup_draft": 0, "flash_attention": "on"},
    "lookup": {"lookup_draft": 8, "flash_attention": "on"},
}
CHAT = [
    "Write a short story about a lighthouse keeper.",
    "Explain recursion to a ten-year-old.",
    "Give me five ideas for a rainy Sunday.",
    "What should I pack for a weekend of hiking?",
    "Write a polite email asking to move a meeting to Thursday.",
    "Describe the water cycle.",
    "Write a limerick about a cat who likes jazz.",
    "What are good habits for a new programmer?",
]


def doc_sections() -> list[tuple[str, str]]:
    """(heading, text) of sections in docs/*.md with some prose, in a fixed order."""
    out = []
    for path in sorted((ROOT / "docs").glob("*.md")):
        parts = re.split(r"^#{2,3} (.+)$", path.read_text(encoding="utf-8"), flags=re.M)
        for heading, body in zip(parts[1::2], parts[2::2], strict=False):
            prose = " ".join(line for line in body.splitlines() if line and line[0].isalpha())[:900]
            if len(prose) > 400:
                out.append((heading.strip(), prose))
    return out


def document_prompts(n: int) -> list[ChatRequest]:
    sections = doc_sections()
    step = max(1, len(sections) // n)
    picked = sections[::step][:n]
    out = []
    for i, (heading, _) in enumerate(picked):
        chosen = [picked[i], *[picked[(i + k) % len(picked)] for k in (1, 2)]]
        blocks = "\n\n".join(
            f'<passage n="{k}" file="docs.md" section="{prompting.defuse(h)}">\n'
            f"{prompting.defuse(t)}\n</passage>"
            for k, (h, t) in enumerate(chosen, start=1)
        )
        question = f"What does the documentation say about {heading.lower()}?"
        out.append(
            ChatRequest(
                (ChatMessage("user", f"{blocks}\n\n{question}"),),
                system_prompt=prompting.system_prompt(None),
            )
        )
    return out


def run(model: Path, way: dict[str, Any], requests: list[ChatRequest], tokens: int) -> list[Any]:
    home = Path(tempfile.mkdtemp(prefix="hearth-bench-lookup-"))
    paths = paths_module.resolve({"HEARTH_HOME": str(home)}).ensure()
    runtime = ModelRuntime(admit=models.gate(Settings.load(None), paths))
    out = []
    try:
        runtime.load(LoadParams(str(model), context_length=4096, threads=2, gpu_layers=0, **way))
        for i, base in enumerate(requests):
            sampling = SamplingParams(temperature=0.2, max_tokens=tokens, seed=100 + i)
            request = ChatRequest(base.messages, sampling, base.system_prompt)
            done = next(e for e in runtime.stream_chat(request) if isinstance(e, Done))
            out.append(done.stats)
    finally:
        runtime.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "lookup.json")
    args = parser.parse_args()
    network.install("bench")
    model = args.model or bundled.CHAT.path()
    sets = {
        "document answers": document_prompts(args.prompts),
        "free chat": [ChatRequest((ChatMessage("user", t),)) for t in CHAT[: args.prompts]],
    }
    raw: dict[str, dict[str, list[list[dict[str, Any]]]]] = {s: {w: [] for w in WAYS} for s in sets}
    for r in range(args.rounds):
        for set_name, requests in sets.items():
            for way_name, way in WAYS.items():
                stats = run(model, way, requests, args.tokens)
                raw[set_name][way_name].append([s.as_dict() for s in stats])
                print(f"  round {r + 1}: {set_name}, {way_name}", file=sys.stderr)
    print(
        f"{model.name}, {args.tokens} tokens, temperature 0.2 seeded, 2 threads, "
        f"{args.rounds} rounds"
    )
    header = f"{'set':18} {'way':15} {'tok/s':>7} {'x FA off':>9} {'x FA on':>8} {'kept':>6}"
    print(header)
    print("-" * len(header))
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for set_name in sets:
        base = raw[set_name]["plain, FA off"]
        fa = raw[set_name]["plain, FA on"]
        for way_name in WAYS:
            runs = raw[set_name][way_name]
            speeds = [s["tokens_per_s"] for rnd in runs for s in rnd]
            ratio = [
                s["tokens_per_s"] / b["tokens_per_s"]
                for rnd, brnd in zip(runs, base, strict=True)
                for s, b in zip(rnd, brnd, strict=True)
                if b["tokens_per_s"] > 0
            ]
            ratio_fa = [
                s["tokens_per_s"] / b["tokens_per_s"]
                for rnd, brnd in zip(runs, fa, strict=True)
                for s, b in zip(rnd, brnd, strict=True)
                if b["tokens_per_s"] > 0
            ]
            drafted = sum(s["drafted_tokens"] for rnd in runs for s in rnd)
            kept = sum(s["accepted_tokens"] for rnd in runs for s in rnd)
            row = {
                "tokens_per_s": statistics.median(speeds),
                "x_fa_off": statistics.median(ratio),
                "x_fa_on": statistics.median(ratio_fa),
                "kept": kept / drafted if drafted else 0.0,
            }
            summary.setdefault(set_name, {})[way_name] = row
            kept_text = f"{row['kept']:.0%}" if drafted else "-"
            print(
                f"{set_name:18} {way_name:15} {row['tokens_per_s']:7.1f} "
                f"{row['x_fa_off']:9.2f} {row['x_fa_on']:8.2f} {kept_text:>6}"
            )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"summary": summary, "raw": raw}, indent=1))
    print(f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
