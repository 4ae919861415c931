"""A file that is one huge line against the same text in small files (issue 34).

Three measurements, each in a fresh process (so each has its own peak memory), in turns over
`--rounds` rounds:
- one-line: `DocumentLibrary.sync` of a folder holding one text file of `--mb` megabytes with
  no line break, beside 15 small files;
- small-files: the same words cut into files of about 4 KB each (the same passages' worth);
- chunk-whole: only the chunking of the one-line text as it was before issue 34 (the whole
  line tokenized at once: `chunking.WINDOW_CHARS` set past its length), against chunk-windowed
  (today's code), for the memory the word pieces take.
Per measurement: seconds, passages, passages per second, peak resident MB (ru_maxrss).

    .venv/bin/python bench/bench_hostile_file.py [--mb 2] [--rounds 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORDS = [
    "the",
    "ferry",
    "harbour",
    "tide",
    "granite",
    "lantern",
    "rope",
    "window",
    "stair",
    "oil",
    "wick",
    "brass",
    "keeper",
]


def words(mb: float) -> str:
    rng = random.Random(34)
    out, n = [], 0
    while n < mb * 1e6:
        w = rng.choice(WORDS) + (". " if rng.random() < 0.06 else " ")
        out.append(w)
        n += len(w)
    return "".join(out)


def make(folder: Path, kind: str, mb: float) -> None:
    folder.mkdir(parents=True)
    text = words(mb)
    if kind == "one-line":
        (folder / "one-line.txt").write_text(text, encoding="utf-8")
        for n in range(15):
            (folder / f"note-{n:02}.txt").write_text(f"Note {n}: the shed key.\n")
        return
    for n, at in enumerate(range(0, len(text), 4000)):
        (folder / f"part-{n:05}.txt").write_text(text[at : at + 4000], encoding="utf-8")


def child(kind: str, mb: float) -> dict[str, float]:
    """Runs in its own process: one measurement."""
    sys.path.insert(0, str(ROOT))
    from engine.documents import chunking
    from engine.documents.embedder import Embedder
    from engine.documents.events import IndexDone

    embedder = Embedder()
    embedder.model()  # loading is not what is measured
    t0 = time.perf_counter()
    if kind.startswith("chunk-"):
        text = words(mb)
        if kind == "chunk-whole":
            chunking.WINDOW_CHARS = len(text) + 1
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        chunks = chunking.chunk_text(text, [], [], embedder.tokenizer, max_tokens=200, overlap=40)
        passages = len(chunks)
    else:
        from engine.documents.library import DocumentLibrary
        from engine.settings import Settings

        with tempfile.TemporaryDirectory() as tmp:
            make(Path(tmp) / "docs", kind, mb)
            base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            t0 = time.perf_counter()
            lib = DocumentLibrary(Path(tmp) / "index", Settings.load(None), embedder)
            lib.create("c", [str(Path(tmp) / "docs")])
            done = [e for e in lib.sync("c") if isinstance(e, IndexDone)][-1]
            passages = done.chunks_added
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "passages": passages, "peak_mb": peak, "base_mb": base}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path, default=ROOT / "bench/results/hostile-file.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.mb)))
        return
    kinds = ["one-line", "small-files", "chunk-whole", "chunk-windowed"]
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    for r in range(args.rounds):
        for kind in kinds if r % 2 == 0 else list(reversed(kinds)):
            out = subprocess.run(
                [sys.executable, __file__, "--child", kind, "--mb", str(args.mb)],
                capture_output=True,
                text=True,
                check=True,
            )
            runs[kind].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{args.mb} MB of text, {args.rounds} rounds in turns (medians; peak = most of any)")
    print("| run | passages | seconds | passages/s | peak MB (above the start) |")
    print("|---|---:|---:|---:|---:|")
    table = {}
    for kind, rs in runs.items():
        sec = statistics.median(x["seconds"] for x in rs)
        peak = max(x["peak_mb"] - x["base_mb"] for x in rs)
        n = int(rs[0]["passages"])
        table[kind] = {
            "passages": n,
            "median_s": round(sec, 2),
            "per_s": round(n / sec, 1),
            "peak_above_start_mb": round(peak),
            "runs": rs,
        }
        print(f"| {kind} | {n} | {sec:.1f} | {n / sec:.1f} | {peak:.0f} |")
    ratio = table["one-line"]["median_s"] / table["small-files"]["median_s"]
    print(f"one-line / small-files time: {ratio:.2f}x")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "mb": args.mb,
                "rounds": args.rounds,
                "table": table,
                "one_line_over_small_files": round(ratio, 3),
            },
            indent=2,
        )
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
