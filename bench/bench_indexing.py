"""Indexing speed end to end: Hearth beside the naive peer pipeline, same files, same run.

    apt-get install git-doc sqlite3-doc postgresql-doc-15
    flock /tmp/hearth-bench.lock .venv/bin/python bench/bench_indexing.py \\
        [--corpora git-doc,sqlite-doc] [--limit-files 40] [--repeats 1] [--systems naive,hearth]

Two systems index the same files (a sample of each corpus of bench/questions/, every k-th file
of the sorted list so the sample spreads over the corpus):
  naive   bench_retrieval's naive pipeline (AnythingLLM's defaults): Hearth's loaders for the
          text, 1000-character recursive splits with 20 of overlap, sentence-transformers
          `encode` with its defaults (float32, batches of 32), chromadb `add` with the vectors
          given (never chromadb's own embedding function: it downloads a model);
  hearth  `DocumentLibrary.sync` on a fresh HEARTH_HOME, as the app builds it (settings,
          default embedder, walk, parse child, chunk, embed, SQLite, chromadb).
Both load their model before the clock starts (one warm-up call each). The figure that counts
is characters indexed per second: the characters of the files' extracted text (Hearth's
loaders, counted once by the naive pass), not of chunks, so chunk size and overlap flatter
neither side. Passages/s and wall time are shown beside it. With --repeats, the systems
alternate and the median is reported with the spread. Prints a table and writes
bench/results/indexing-<time>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_retrieval import QUESTIONS, corpus_files, naive_index  # noqa: E402

from engine import models  # noqa: E402
from engine.documents.events import IndexDone  # noqa: E402


def sample(files: list[Path], limit: int | None) -> list[Path]:
    if not limit or limit >= len(files):
        return files
    step = len(files) / limit
    return [files[int(i * step)] for i in range(limit)]


def run_naive(root: Path, files: list[Path], model: Any, work: Path) -> dict[str, Any]:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.PersistentClient(
        str(work / "naive"), settings=ChromaSettings(anonymized_telemetry=False)
    )
    info = naive_index(client, root, files, model)
    return info


def run_hearth(files: list[Path], work: Path) -> dict[str, Any]:
    """A fresh HEARTH_HOME and the library the app builds (app/compose.py)."""
    from engine import paths
    from engine.documents.library import DocumentLibrary
    from engine.settings import Settings

    home = work / "hearth-home"
    os.environ[paths.HOME_ENV] = str(home)
    data = paths.resolve().ensure()
    library = DocumentLibrary(data.data / "documents", Settings.load(data.settings_file))
    import chromadb  # noqa: F401  imported before the clock, as for naive

    embedder = library.embedder
    embedder.embed(["warm up"])  # torch or onnxruntime loaded before the clock, as naive's
    library.create("bench", [str(p) for p in files])
    t0 = time.perf_counter()
    done = None
    for event in library.sync("bench"):
        if isinstance(event, IndexDone):
            done = event
    seconds = time.perf_counter() - t0
    assert done is not None
    library.close()
    return {
        "files": done.indexed,
        "failed": done.failed,
        "skipped": done.skipped,
        "passages": done.chunks_added,
        "seconds": seconds,
        "embedder": embedder.model_id,
        "backend": getattr(embedder, "backend", None) or getattr(embedder, "dtype", None),
    }


def summary(runs: list[dict[str, Any]], chars: int) -> dict[str, Any]:
    rates = [chars / r["seconds"] for r in runs]
    return {
        "chars_per_s": statistics.median(rates),
        "chars_per_s_min": min(rates),
        "chars_per_s_max": max(rates),
        "passages_per_s": statistics.median(r["passages"] / r["seconds"] for r in runs),
        "seconds": statistics.median(r["seconds"] for r in runs),
        "passages": runs[-1]["passages"],
        "files": runs[-1]["files"],
        "runs": runs,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--corpora", default="git-doc,sqlite-doc", help="comma-separated names")
    ap.add_argument("--limit-files", type=int, default=40, help="files per corpus (0: all)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--systems", default="naive,hearth")
    ap.add_argument("--questions", type=Path, default=QUESTIONS, help="folder of question sets")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    wanted = [c for c in args.corpora.split(",") if c]
    systems = [s for s in args.systems.split(",") if s]
    specs = [
        json.loads(p.read_text(encoding="utf-8")) for p in sorted(args.questions.glob("*.json"))
    ]
    specs = [s for s in specs if s["corpus"] in wanted]
    model = None
    if "naive" in systems:
        model = SentenceTransformer(
            str(models.BUNDLED_EMBEDDER.path()), device="cpu", local_files_only=True
        )
        model.encode(["warm up"], show_progress_bar=False)
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "limit_files": args.limit_files,
        "repeats": args.repeats,
        "cpus": os.cpu_count(),
        "load_before": os.getloadavg(),
        "corpora": {},
    }
    from engine.documents import loaders

    for spec in specs:
        root = Path(spec["root"])
        files = sample(corpus_files(spec), args.limit_files)
        chars = 0
        if "naive" not in systems:  # the naive pass counts them; otherwise count here
            for path in files:
                kind = loaders.kind_for(path)
                if kind is not None:
                    with contextlib.suppress(loaders.Skip, loaders.Fail):
                        chars += len(loaders.load(path, kind).text)
        runs: dict[str, list[dict[str, Any]]] = {s: [] for s in systems}
        for _ in range(args.repeats):
            for name in systems:
                work = Path(tempfile.mkdtemp(prefix=f"hearth-bench-index-{name}-"))
                try:
                    if name == "naive":
                        info = run_naive(root, files, model, work)
                        chars = info["chars"]
                    else:
                        info = run_hearth(files, work)
                finally:
                    shutil.rmtree(work, ignore_errors=True)
                runs[name].append(info)
                print(f"  {spec['corpus']} {name}: {info['seconds']:.1f} s", flush=True)
        results["corpora"][spec["corpus"]] = {
            "files": len(files),
            "chars": chars,
            "systems": {name: summary(r, chars) for name, r in runs.items()},
        }
    results["load_after"] = os.getloadavg()

    header = (
        f"{'corpus':12} {'system':7} {'files':>5} {'chars':>9} {'passages':>8} {'wall s':>7} "
        f"{'chars/s':>8} {'(min-max)':>13} {'passages/s':>10} {'vs naive':>8}"
    )
    print(header)
    print("-" * len(header))
    for corpus, r in results["corpora"].items():
        base = r["systems"].get("naive", {}).get("chars_per_s")
        for name, m in r["systems"].items():
            ratio = f"{m['chars_per_s'] / base:7.2f}x" if base else ""
            spread = f"{m['chars_per_s_min']:.0f}-{m['chars_per_s_max']:.0f}"
            print(
                f"{corpus:12} {name:7} {m['files']:5d} {r['chars']:9d} {m['passages']:8d} "
                f"{m['seconds']:7.1f} {m['chars_per_s']:8.0f} {spread:>13} "
                f"{m['passages_per_s']:10.1f} {ratio:>8}"
            )
    print(f"load average before {results['load_before']}, after {results['load_after']}")
    out = ROOT / "bench" / "results" / f"indexing-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
