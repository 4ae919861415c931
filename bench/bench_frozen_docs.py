"""A user's first documents in the frozen app: one bundle against another, in turns.

Issue 33 took torch out of the frozen app: the embedder ships as the ONNX export the build made
(engine/documents/onnx_export.py) instead of being exported on the user's first sync. This puts
two unpacked bundles side by side (`--before`: a build with torch, `--after`: without), each
round in turns on a fresh HEARTH_HOME, so a slow spell of the shared machine lands on both:
- first-add: `hearth docs add` of this repository's docs/ folder (Markdown files), the user's
  first sync (the embedder loads for the first time; the old bundle exports it here);
- second-add: the same command again on that home (nothing to embed; what a start costs);
- search: `hearth docs search` of one question (the embedder loads, one query is embedded);
and the largest resident memory any process of each command reached (wait4's ru_maxrss over
the command and the workers it waited for).

    .venv/bin/python bench/bench_frozen_docs.py --before OLD/hearth --after build/dist/hearth \
        [--rounds 3] [--json bench/results/frozen-docs.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "how do I install it on many machines without anyone clicking"


def run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Seconds and peak resident MB of one command (its waited-for children included)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv} failed: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
    return seconds, usage.ru_maxrss / 1024


def one_round(app: Path, docs: Path) -> dict[str, tuple[float, float]]:
    exe = str(app / "hearth")
    with tempfile.TemporaryDirectory() as home:
        env = {"HEARTH_HOME": home, "HF_HUB_OFFLINE": "1"}
        return {
            "first-add": run([exe, "docs", "add", "bench", str(docs)], env),
            "second-add": run([exe, "docs", "add", "bench", str(docs)], env),
            "search": run([exe, "docs", "search", "bench", QUESTION], env),
        }


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--after", type=Path, required=True)
    parser.add_argument("--docs", type=Path, default=ROOT / "docs")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=ROOT / "bench/results/frozen-docs.json")
    args = parser.parse_args()
    bundles = {"before": args.before.resolve(), "after": args.after.resolve()}
    runs: dict[str, list[dict[str, tuple[float, float]]]] = {k: [] for k in bundles}
    for i in range(args.rounds):
        order = list(bundles) if i % 2 == 0 else list(reversed(bundles))
        for name in order:
            runs[name].append(one_round(bundles[name], args.docs))
    steps = list(runs["before"][0])
    result: dict[str, object] = {
        "rounds": args.rounds,
        "docs": str(args.docs),
        "files": sum(1 for p in args.docs.rglob("*") if p.is_file()),
        "folder_mb": {k: round(folder_mb(v), 1) for k, v in bundles.items()},
        "steps": {},
    }
    head = ("step", "before s", "after s", "after/before", "before MB", "after MB")
    print("{:<11} {:>9} {:>9} {:>13} {:>10} {:>9}".format(*head))
    for step in steps:
        med = {k: statistics.median(r[step][0] for r in runs[k]) for k in runs}
        mem = {k: max(r[step][1] for r in runs[k]) for k in runs}
        ratio = med["after"] / med["before"]
        result["steps"][step] = {  # type: ignore[index]
            "seconds": {k: [round(r[step][0], 2) for r in runs[k]] for k in runs},
            "median_s": {k: round(v, 2) for k, v in med.items()},
            "after_over_before": round(ratio, 3),
            "peak_rss_mb": {k: round(v) for k, v in mem.items()},
        }
        print(
            f"{step:<11} {med['before']:>9.2f} {med['after']:>9.2f} {ratio:>12.2f}x "
            f"{mem['before']:>10.0f} {mem['after']:>9.0f}"
        )
    sizes = result["folder_mb"]
    print(f"folders: before {sizes['before']} MB, after {sizes['after']} MB")  # type: ignore[index]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
