"""The grounding check (engine/documents/grounding.py) on sentences labelled by someone who never
saw it, beside a naive check.

    .venv/bin/python bench/bench_grounding.py [--split dev|test] [--data FILE]

bench/grounding/sentences.json holds real passages copied from Debian's git, SQLite and Python
documentation and, for each, answer-like sentences labelled supported, partial (part of it is
not in the passage), contradicted or unrelated. A sentence's split is fixed by a hash of its
id: about 40% dev (what the thresholds were set on), 60% test (run only to report).

Each sentence is checked as an answer sentence would be: against its own passage among four
sources (the other three are the next passages of the file, which do not back it). Gold
"unsupported" is contradicted or unrelated. Reported: precision and recall of "unsupported"
(what a reviewer relies on to find the sentences to distrust), the full confusion, and the
check's cost per sentence and per four-sentence answer. The naive check beside it calls a
sentence unsupported when its best cosine similarity with any source sentence is below 0.5,
the usual embedding-only test.

Prints a table and writes bench/results/grounding-<split>-<time>.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from engine import models  # noqa: E402
from engine.documents import grounding  # noqa: E402
from engine.documents.embedder import for_model  # noqa: E402

DATA = ROOT / "bench" / "grounding" / "sentences.json"
GOLD = {
    "supported": "supported",
    "partial": "partial",
    "contradicted": "unsupported",
    "unrelated": "unsupported",
}
NAIVE_THRESHOLD = 0.5


def split_of(sentence_id: str) -> str:
    return "dev" if hashlib.sha256(sentence_id.encode()).digest()[0] % 10 < 4 else "test"


def naive(sentence: str, sources: list[dict[str, Any]], embed: Any) -> str:
    units = [s["quote"][a:b] for s in sources for a, b in grounding.split_sentences(s["quote"])]
    vectors = np.asarray(embed([sentence, *units]))
    best = float(np.max(vectors[1:] @ vectors[0]))
    return "unsupported" if best < NAIVE_THRESHOLD else "supported"


def prf(pairs: list[tuple[str, str]], label: str) -> dict[str, float]:
    tp = sum(1 for g, p in pairs if g == label and p == label)
    fp = sum(1 for g, p in pairs if g != label and p == label)
    fn = sum(1 for g, p in pairs if g == label and p != label)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--split", choices=("dev", "test"), default="dev")
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args()
    data = json.loads(args.data.read_text(encoding="utf-8"))
    passages = data["passages"]
    index = {p["id"]: i for i, p in enumerate(passages)}
    sentences = [s for s in data["sentences"] if split_of(s["id"]) == args.split]
    embedder = for_model(models.BUNDLED_EMBEDDER.id)
    embed = embedder.embed
    embed(["warm up"])
    if args.split == "test":
        print("TEST SPLIT: for reporting only; change nothing because of what it shows.\n")

    rows = []
    times = []
    for s in sentences:
        i = index[s["passage"]]
        chosen = [passages[(i + k) % len(passages)] for k in range(4)]
        sources = [{"n": n, "quote": p["text"]} for n, p in enumerate(chosen, start=1)]
        t0 = time.perf_counter()
        result = grounding.check(s["sentence"], sources, embed)
        times.append((time.perf_counter() - t0) * 1000)
        verdicts = [c.verdict for c in result.sentences if c.verdict != "none"]
        ours = (
            "unsupported"
            if "unsupported" in verdicts
            else "partial"
            if "partial" in verdicts
            else "supported"
            if verdicts
            else "none"
        )
        rows.append(
            {
                "id": s["id"],
                "label": s["label"],
                "gold": GOLD[s["label"]],
                "hearth": ours,
                "naive": naive(s["sentence"], sources, embed),
                "checks": [
                    {k: v for k, v in c.__dict__.items() if k in ("verdict", "similarity", "words")}
                    for c in result.sentences
                ],
            }
        )

    answer_times = []
    by_passage: dict[str, list[str]] = {}
    for s in data["sentences"]:
        if s["label"] == "supported":
            by_passage.setdefault(s["passage"], []).append(s["sentence"])
    for pid, said in list(by_passage.items())[:20]:
        i = index[pid]
        chosen = [passages[(i + k) % len(passages)] for k in range(6)]
        sources = [{"n": n, "quote": p["text"]} for n, p in enumerate(chosen, start=1)]
        answer = " ".join((said * 4)[:4])
        t0 = time.perf_counter()
        grounding.check(answer, sources, embed)
        answer_times.append((time.perf_counter() - t0) * 1000)

    out: dict[str, Any] = {"split": args.split, "sentences": len(rows), "systems": {}}
    print(f"{args.split} split: {len(rows)} sentences ({dict(Counter(r['label'] for r in rows))})")
    header = f"{'system':8} {'unsupported P':>14} {'R':>6} {'F1':>6} {'3-way accuracy':>15}"
    print(header)
    print("-" * len(header))
    for system in ("naive", "hearth"):
        pairs = [(r["gold"], r[system]) for r in rows]
        unsupported = prf(pairs, "unsupported")
        accuracy = statistics.fmean(1.0 if g == p else 0.0 for g, p in pairs)
        confusion = Counter(f"{r['label']}->{r[system]}" for r in rows)
        out["systems"][system] = {
            "unsupported": unsupported,
            "accuracy_3way": accuracy,
            "confusion": dict(sorted(confusion.items())),
        }
        print(
            f"{system:8} {unsupported['precision']:14.3f} {unsupported['recall']:6.3f} "
            f"{unsupported['f1']:6.3f} {accuracy:15.3f}"
        )
    print("\nhearth confusion (label -> verdict):")
    for key, n in sorted(out["systems"]["hearth"]["confusion"].items()):
        print(f"  {key:28} {n}")
    out["ms_per_sentence_p50"] = statistics.median(times)
    out["ms_per_answer_4_sentences_6_sources_p50"] = statistics.median(answer_times)
    print(
        f"\ncost: {out['ms_per_sentence_p50']:.1f} ms per sentence against 4 sources (p50); "
        f"{out['ms_per_answer_4_sentences_6_sources_p50']:.1f} ms per 4-sentence answer "
        "against 6 sources (p50)"
    )
    out["rows"] = rows
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = ROOT / "bench" / "results" / f"grounding-{args.split}-{stamp}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
