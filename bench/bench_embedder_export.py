"""The export a release ships (weights stored in float16) against the float32 export a checkout
makes: the same vectors, the same passages found, the same speed?

Both files are made here from the bundled all-MiniLM-L6-v2 (engine/documents/onnx_export.py:
`ensure` for float32, `write_shipped` for the release's). Passages are 900-character pieces of
this repository's docs and engine code; questions are the first 120 characters of every 7th
passage (words a user might paste). Speed: both embed the same passages, in turns, `--rounds`
times, so a slow spell of the shared machine lands on both.

    .venv/bin/python bench/bench_embedder_export.py [--rounds 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def passages(limit: int = 600) -> list[str]:
    files = sorted(ROOT.glob("docs/*.md")) + sorted(ROOT.glob("engine/**/*.py"))[:40]
    out = []
    for f in files:
        text = f.read_text(encoding="utf-8")
        out += [text[i : i + 900] for i in range(0, len(text), 900)]
    return out[:limit]


def main() -> None:
    from engine import models
    from engine.documents import onnx_export
    from engine.documents.embedder import Embedder, _embed_onnx

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=ROOT / "bench/results/embedder-export.json")
    args = parser.parse_args()
    folder = models.BUNDLED_EMBEDDER.path()
    with tempfile.TemporaryDirectory() as tmp:
        files = {
            "float32": onnx_export.ensure(folder, Path(tmp) / "cache"),
            "shipped": Path(tmp) / "shipped" / "model.onnx",
        }
        record = onnx_export.write_shipped(
            folder, files["shipped"].parent, models.BUNDLED_EMBEDDER.sha256
        )
        sessions = {k: onnx_export.session(p, None) for k, p in files.items()}
        sizes = {k: round(p.stat().st_size / 1e6, 1) for k, p in files.items()}
        e = Embedder()
        texts = passages()
        questions = [t[:120] for t in texts[::7]]
        vec = {k: _embed_onnx(e, s, texts, "mean", 8) for k, s in sessions.items()}
        qv = {k: _embed_onnx(e, s, questions, "mean", 8) for k, s in sessions.items()}
        cosines = (vec["float32"] * vec["shipped"]).sum(1)
        top5, top1 = [], []
        for a, b in zip(qv["float32"], qv["shipped"], strict=True):
            ra = np.argsort(-(vec["float32"] @ a))
            rb = np.argsort(-(vec["shipped"] @ b))
            top5.append(len(set(ra[:5]) & set(rb[:5])) / 5)
            top1.append(float(ra[0] == rb[0]))
        seconds: dict[str, list[float]] = {k: [] for k in sessions}
        for r in range(args.rounds):
            for k in sessions if r % 2 == 0 else list(reversed(list(sessions))):
                t0 = time.perf_counter()
                _embed_onnx(e, sessions[k], texts, "mean", 8)
                seconds[k].append(time.perf_counter() - t0)
    result = {
        "passages": len(texts),
        "questions": len(questions),
        "file_mb": sizes,
        "record": record,
        "cosine": {"min": float(cosines.min()), "mean": float(cosines.mean())},
        "top5_agreement": float(np.mean(top5)),
        "top1_agreement": float(np.mean(top1)),
        "seconds": {k: [round(x, 2) for x in v] for k, v in seconds.items()},
        "shipped_over_float32": round(
            statistics.median(seconds["shipped"]) / statistics.median(seconds["float32"]), 3
        ),
    }
    print("| export | file MB | median s for the passages |")
    print("|---|---:|---:|")
    for k in sessions:
        print(f"| {k} | {sizes[k]} | {statistics.median(seconds[k]):.2f} |")
    print(
        f"{len(texts)} passages: cosine min {cosines.min():.7f} mean {cosines.mean():.7f}; "
        f"{len(questions)} questions: top-5 agreement {result['top5_agreement']:.3f}, "
        f"top-1 {result['top1_agreement']:.3f}; shipped/float32 time "
        f"{result['shipped_over_float32']}x"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
