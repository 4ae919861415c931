"""The perplexity of a fixed text under llama.cpp's fast or plain CPU kernels, in a child process.

llama.cpp keeps some weights in "extra buffer types" that its fastest CPU kernels read: AMX
tiles on Sapphire Rapids and later Xeons, weights repacked for AVX2/AVX-512 or Arm's dot
products. Those kernels are where a CPU-specific defect lives (llama.cpp issue #20824: the AMX
kernel faults, or a wrong build computes garbage), and llama.cpp can load a model without them
(`use_extra_bufts` off, `LoadParams.plain_cpu_kernels`). Scoring the same text both ways tells
whether the fast kernels compute what the plain ones do: equal within rounding (they quantize
the activations the same way), where a broken kernel is off by orders of magnitude.

Run as `python -m engine.runtime.kernel_check fast|plain MODEL` (or the frozen app's
`--hearth-kernel-check`); prints one JSON object: perplexity, tokens scored, the CPU buffers
llama.cpp used, seconds. A crash ends the process with its signal, which the caller reports.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

# Plain prose written for this check (no licence attached to anyone else's text), long enough
# for a few hundred tokens in one batch: the batched matrix products are where AMX and the
# repacked kernels run.
TEXT = (
    "The library opens at nine in the morning and closes at six in the evening, except on "
    "Sundays, when it stays closed. Visitors may borrow up to five books at a time for three "
    "weeks. A book that comes back late costs ten cents a day, and a lost book must be paid "
    "for at the price printed inside its cover. The reading room on the second floor is kept "
    "quiet; phones must be silent there, and food is not allowed anywhere near the shelves. "
    "Children under twelve need an adult with them after four o'clock. The library also lends "
    "laptops for use inside the building: ask at the front desk, show a card, and return the "
    "laptop before closing time. Printing costs five cents a page in black and white and "
    "twenty cents in colour. Every first Saturday of the month a volunteer reads stories to "
    "young children at ten o'clock, and on Wednesday evenings there is a book club that "
    "anyone may join. If you would like to suggest a book for the library to buy, fill in a "
    "card at the desk or write to the head librarian, who reads every suggestion and answers "
    "within two weeks. Donations of books in good condition are welcome on weekdays."
)


def perplexity(model_path: str, plain: bool) -> dict[str, Any]:
    """Score TEXT with the model on fast (plain False) or plain kernels."""
    import numpy as np
    from llama_cpp import Llama

    from engine import llama_build
    from engine.runtime import offload
    from engine.runtime.worker import extra_buffers

    llama_build.load_backends()
    started = time.perf_counter()
    with offload.LlamaLog() as native, extra_buffers(not plain):
        llm = Llama(
            model_path=model_path,
            n_ctx=512,
            n_batch=512,
            n_ubatch=512,
            n_gpu_layers=0,
            logits_all=True,
            verbose=False,
        )
    report = offload.Report("0")
    offload.read_log(native.lines, report)
    tokens = llm.tokenize(TEXT.encode("utf-8"), add_bos=True)
    llm.eval(tokens)
    logits = np.asarray(llm.scores[: len(tokens) - 1], dtype=np.float64)
    peak = logits.max(axis=1, keepdims=True)
    log_probs = logits - peak - np.log(np.exp(logits - peak).sum(axis=1, keepdims=True))
    picked = log_probs[np.arange(len(tokens) - 1), tokens[1:]]
    llm.close()
    return {
        "kernels": "plain" if plain else "fast",
        "perplexity": float(np.exp(-picked.mean())),
        "tokens": len(tokens) - 1,
        "buffers": sorted(report.devices),
        "seconds": round(time.perf_counter() - started, 3),
    }


def main() -> None:
    from engine import network

    network.install("kernel check")
    args = sys.argv[1:]
    if args and args[0] == "--hearth-kernel-check":
        args = args[1:]
    if len(args) != 2 or args[0] not in ("fast", "plain"):
        sys.exit("usage: python -m engine.runtime.kernel_check fast|plain MODEL.gguf")
    result = perplexity(args[1], plain=args[0] == "plain")
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
