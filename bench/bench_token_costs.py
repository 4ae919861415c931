"""Where a generated token's time goes in the worker, part by part, in microseconds.

    .venv/bin/python bench/bench_token_costs.py [--model PATH] [--threads N] [--calls 400]

One decode step is timed beside everything the worker does per token around it: choosing the
token (llama.cpp's sampler chain as the worker used it before, and TokenPicker as it does
now, greedy and with the chat's sampling defaults), turning it into text (token_to_piece, the
UTF-8 decoder, the stop-string matcher) and sending text to the app (a JSON line, at most
every 50 ms). Median of --calls calls each, in one process; the machine is shared, so read
each part against the decode step measured in the same run. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import codecs
import ctypes
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import llama_build  # noqa: E402
from engine.models import bundled  # noqa: E402
from engine.runtime.params import SamplingParams, default_threads  # noqa: E402
from engine.runtime.sampling import PENALTY_LAST_N, TokenPicker, llama_chain  # noqa: E402
from engine.runtime.stops import StopMatcher  # noqa: E402

PROMPT = b"<|im_start|>user\nWrite a long story about a lighthouse keeper.<|im_end|>\n"


def median_us(call: Callable[[], object], calls: int) -> float:
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def main() -> int:
    import llama_cpp as ll
    from llama_cpp import Llama

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument(
        "--json", type=Path, default=ROOT / "bench" / "results" / "token_costs.json"
    )
    args = parser.parse_args()
    model = args.model or bundled.CHAT.path()
    llama_build.load_backends()
    llm = Llama(
        model_path=str(model),
        n_ctx=2048,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        verbose=False,
    )
    ctx = llm.ctx
    vocab = ll.llama_model_get_vocab(llm.model)
    n_vocab = llm.n_vocab()
    prompt = llm.tokenize(PROMPT, special=True)
    llm.eval(prompt)
    rows: dict[str, float] = {}

    one = ll.llama_batch_init(1, 0, 1)
    one.n_tokens, one.n_seq_id[0], one.logits[0] = 1, 1, 1
    one.seq_id[0][0] = 0
    pos = [len(prompt)]

    def decode() -> None:
        one.token[0] = 100
        one.pos[0] = pos[0]
        pos[0] += 1
        ll.llama_decode(ctx, one)
        ll.llama_synchronize(ctx)

    rows["decode one token (llama_decode)"] = median_us(decode, min(args.calls, 256))

    # Choosing: the logits of the last decode stay where they are; choosing does not change
    # them except for TokenPicker's penalty, which touches only the recent tokens.
    window = prompt[-PENALTY_LAST_N:]
    for label, sampling in (
        ("greedy", SamplingParams(temperature=0, repeat_penalty=1.0)),
        ("chat defaults", SamplingParams(seed=1)),
    ):
        chain = llama_chain(ll, n_vocab, sampling, with_penalties=True)  # as before
        picker = TokenPicker(ll, ctx, vocab, sampling, None)
        for token in window:  # a full penalty window, as after 64 generated tokens
            ll.llama_sampler_accept(chain, token)
            if picker.penalty is not None:
                picker.penalty.accept(token)
        rows[f"choose, {label}: llama.cpp chain (before)"] = median_us(
            lambda c=chain: ll.llama_sampler_sample(c, ctx, -1), args.calls
        )
        rows[f"choose, {label}: TokenPicker (now)"] = median_us(
            lambda p=picker: p.pick(-1), args.calls
        )
        picker.free()
        ll.llama_sampler_free(chain)

    buf = ctypes.create_string_buffer(256)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    stops = StopMatcher(("<|im_end|>", "<|im_start|>"))
    text_tokens = llm.tokenize(b" The keeper climbed the stairs of the old lighthouse again.")
    turn = [0]

    def to_text() -> None:
        token = text_tokens[turn[0] % len(text_tokens)]
        turn[0] += 1
        ll.llama_vocab_is_eog(vocab, token)
        n = ll.llama_token_to_piece(vocab, token, buf, len(buf), 0, False)
        stops.feed(decoder.decode(buf.raw[:n]))

    rows["to text (piece, UTF-8, stop strings)"] = median_us(to_text, args.calls)
    rows["send a piece (JSON line, at most every 50 ms)"] = median_us(
        lambda: json.dumps(("piece", 7, " the stairs again"), ensure_ascii=False).encode() + b"\n",
        args.calls,
    )
    llm.close()

    step = rows["decode one token (llama_decode)"]
    print(f"model {model.name}, threads {args.threads}, median of {args.calls} calls each")
    print(f"{'part':52} {'us':>9} {'% of a decode step':>19}")
    for name, us in rows.items():
        print(f"{name:52} {us:9.1f} {100 * us / step:18.1f}%")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"model": str(model), "us": rows}, indent=2))
    print(f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
