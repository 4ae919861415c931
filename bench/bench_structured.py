"""What holding answers to a JSON schema costs, against free text, in one run.

    .venv/bin/python bench/bench_structured.py [--model PATH] [--rounds 5] [--tokens 128]

Two parts, greedy, the same prompt, each way once per round, in turn:

1. The sampling step alone, in this process, with llama.cpp's API in one decoding loop
   (identical but for how each token is chosen):
     free                  the sampler chain, no grammar
     grammar, check first  engine.runtime.grammar_sampler: sample freely, ask the grammar
                           about that token, resample under the grammar only when refused
     grammar, whole vocab  the grammar first in the chain, over every token, every step
   Per way: ms per token spent choosing tokens, and tokens/s of the loop.

2. The user's view, through the app's runtime (worker process): tokens/s of a free answer
   against one held to the schema (SamplingParams.json_schema).

Medians over rounds; read the ratios, measured in the same run on a shared machine.
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
from engine.models import bundled  # noqa: E402
from engine.runtime import (  # noqa: E402
    ChatMessage,
    ChatRequest,
    Done,
    LoadParams,
    ModelRuntime,
    SamplingParams,
    json_grammar,
)
from engine.runtime.grammar_sampler import GrammarSampler  # noqa: E402
from engine.settings import Settings  # noqa: E402

QUESTION = (
    "List ten cities of Europe, each with a one-sentence description, as JSON with a "
    "'cities' list of objects with 'name' and 'description'."
)
SCHEMA = {
    "type": "object",
    "required": ["cities"],
    "additionalProperties": False,
    "properties": {
        "cities": {
            "type": "array",
            "minItems": 10,
            "maxItems": 10,
            "items": {
                "type": "object",
                "required": ["name", "description"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "maxLength": 30},
                    "description": {"type": "string", "maxLength": 200},
                },
            },
        }
    },
}


def open_runtime() -> ModelRuntime:
    """A runtime held to the policy of default settings (none): the bench names its file."""
    home = Path(tempfile.mkdtemp(prefix="hearth-bench-"))
    paths = paths_module.resolve({"HEARTH_HOME": str(home)})
    return ModelRuntime(admit=models.gate(Settings.load(None), paths))


def sampling_loop(llm: Any, tokens: int, grammar: str) -> dict[str, Callable[[], dict[str, float]]]:
    import llama_cpp

    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    prompt = llm.tokenize(
        ("<|im_start|>user\n" + QUESTION + "<|im_end|>\n<|im_start|>assistant\n").encode(),
        special=True,
    )

    def greedy_chain(with_grammar: bool) -> Any:
        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        if with_grammar:
            llama_cpp.llama_sampler_chain_add(
                chain, llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
            )
        llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_greedy())
        return chain

    def run(way: str) -> dict[str, float]:
        chain = greedy_chain(way == "grammar, whole vocab")
        checker = (
            GrammarSampler(llama_cpp, llm.ctx, vocab, chain, grammar)
            if way == "grammar, check first"
            else None
        )
        llm.reset()
        llm.eval(prompt)
        choosing = 0.0
        n = 0
        t0 = time.perf_counter()
        try:
            while n < tokens:
                t = time.perf_counter()
                token = (
                    checker.sample()
                    if checker is not None
                    else llama_cpp.llama_sampler_sample(chain, llm.ctx, -1)
                )
                choosing += time.perf_counter() - t
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    break
                n += 1
                llm.eval([token])
        finally:
            if checker is not None:
                checker.free()
            llama_cpp.llama_sampler_free(chain)
        total = time.perf_counter() - t0
        return {
            "tokens": n,
            "choose_ms": choosing / n * 1000,
            "tok_s": n / total,
            "resampled": float(checker.resampled if checker is not None else 0),
        }

    return {
        way: (lambda w=way: run(w))
        for way in ("free", "grammar, check first", "grammar, whole vocab")
    }


def runtime_ways(model: Path, tokens: int) -> tuple[ModelRuntime, dict[str, Callable[[], Any]]]:
    runtime = open_runtime()
    runtime.load(LoadParams(str(model), context_length=4096))

    def answer(schema: str | None, nonce: str) -> dict[str, float]:
        sampling = SamplingParams(
            temperature=0, max_tokens=tokens, repeat_penalty=1.0, json_schema=schema
        )
        request = ChatRequest((ChatMessage("user", nonce + QUESTION),), sampling)
        done = [e for e in runtime.stream_chat(request) if isinstance(e, Done)][-1]
        return {"tokens": done.stats.generated_tokens, "tok_s": done.stats.tokens_per_s}

    text = json.dumps(SCHEMA)
    return runtime, {
        "runtime, free": lambda n: answer(None, n),
        "runtime, JSON schema": lambda n: answer(text, n),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "structured.json")
    args = parser.parse_args()
    network.install("bench")
    import llama_cpp

    model = args.model or bundled.CHAT.path()
    grammar = json_grammar.grammar_for(json.dumps(SCHEMA))
    llm = llama_cpp.Llama(str(model), n_ctx=2048, n_threads=2, verbose=False)
    vocab_size = llm.n_vocab()
    loop = sampling_loop(llm, args.tokens, grammar)
    raw: dict[str, list[dict[str, float]]] = {name: [] for name in loop}
    try:
        for way in loop.values():
            way()  # warm-up
        for _ in range(args.rounds):
            for name, way in loop.items():
                raw[name].append(way())
    finally:
        llm.close()
    runtime, ways = runtime_ways(model, args.tokens)
    try:
        for name in ways:
            raw[name] = []
        for way in ways.values():
            way("(warm-up) ")
        for r in range(args.rounds):
            for i, (name, way) in enumerate(ways.items()):
                raw[name].append(way(f"(run {r}-{i}) "))
    finally:
        runtime.close()

    median = {
        name: {k: statistics.median(run[k] for run in runs) for k in runs[0]}
        for name, runs in raw.items()
    }
    print(
        f"model {model.name}, up to {args.tokens} tokens greedy, median of {args.rounds} "
        f"rounds, vocabulary {vocab_size:,}"
    )
    header = (
        f"{'way':22} {'tokens':>6} {'choose ms/tok':>14} {'tok/s':>7} {'x free':>7} "
        f"{'resampled':>9}"
    )
    print(header)
    print("-" * len(header))
    for name, row in median.items():
        base = median["runtime, free" if name.startswith("runtime") else "free"]
        choose = f"{row['choose_ms']:.2f}" if "choose_ms" in row else "-"
        resampled = f"{row['resampled']:.0f}" if "resampled" in row else "-"
        print(
            f"{name:22} {row['tokens']:6.0f} {choose:>14} {row['tok_s']:7.1f} "
            f"{row['tok_s'] / base['tok_s']:7.3f} {resampled:>9}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "model": str(model),
                "tokens": args.tokens,
                "rounds": args.rounds,
                "vocabulary": vocab_size,
                "schema": SCHEMA,
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
