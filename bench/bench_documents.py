"""Documents: retrieval quality and speed, on a real corpus nobody here wrote.

    apt-get install python3.11-doc        # the Python 3.11 library reference, as HTML
    .venv/bin/python bench/bench_documents.py [--corpus /usr/share/doc/python3.11/html/library]
                                              [--parts quality,embed,latency,resync]

quality  index the corpus with Hearth (end to end: walk, parse in the child process, chunk,
         embed, store), then ask bench/doc_questions.json (50 questions written for this
         bench, each naming the page that answers it) and report recall@5 and MRR@10 at file
         level for vector-only, BM25-only and hybrid retrieval.
embed    chunks/s: Hearth's end-to-end indexing against sentence-transformers' own `encode`
         (torch, defaults) on the same chunk texts; then faster backends on the same texts
         (torch int8 dynamic quantisation, bfloat16), each with its recall@5.
latency  search p50/p95 at 10k and 100k chunks (the corpus's real chunks and vectors,
         repeated with small perturbations to reach the size), with and without embedding
         the question.
resync   time to sync an unchanged collection of 10,000 files.

Prints tables and writes bench/results/documents-<time>.json. Ratios are measured in the same
run; the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from engine.documents.embedder import Embedder  # noqa: E402
from engine.documents.events import IndexDone  # noqa: E402
from engine.documents.library import DocumentLibrary  # noqa: E402
from engine.documents.store import DocumentStore, NewChunk  # noqa: E402
from engine.settings import Settings  # noqa: E402

QUESTIONS = ROOT / "bench" / "doc_questions.json"
DEFAULT_CORPUS = Path("/usr/share/doc/python3.11/html/library")


def sync(lib: DocumentLibrary, name: str) -> IndexDone:
    done = None
    for event in lib.sync(name):
        if isinstance(event, IndexDone):
            done = event
    assert done is not None
    return done


def evaluate(
    lib: DocumentLibrary, name: str, questions: list[dict[str, str]], mode: str
) -> dict[str, float]:
    recall = rr = 0.0
    for q in questions:
        hits = lib.search(name, q["question"], top_k=10, min_score=0.0, mode=mode).hits
        files = [Path(h.path).name for h in hits]
        if q["file"] in files[:5]:
            recall += 1
        if q["file"] in files:
            rr += 1 / (files.index(q["file"]) + 1)
    n = len(questions)
    return {"recall@5": recall / n, "mrr@10": rr / n}


def part_quality(args: argparse.Namespace, work: Path, out: dict[str, Any]) -> DocumentLibrary:
    questions = json.loads(QUESTIONS.read_text(encoding="utf-8"))
    lib = DocumentLibrary(work / "index", Settings.load(None), Embedder())
    lib.create("corpus", [str(args.corpus)])
    t0 = time.perf_counter()
    done = sync(lib, "corpus")
    seconds = time.perf_counter() - t0
    out["index"] = {
        "files": done.indexed,
        "skipped": done.skipped,
        "failed": done.failed,
        "chunks": done.chunks_added,
        "seconds": seconds,
        "chunks_per_s": done.chunks_added / seconds,
    }
    print(
        f"\nindexed {done.indexed} files ({done.skipped} skipped, {done.failed} failed), "
        f"{done.chunks_added} chunks in {seconds:.1f} s = {done.chunks_added / seconds:.1f} "
        "chunks/s end to end"
    )
    print(f"\n{'retrieval':10} {'recall@5':>9} {'MRR@10':>8}   ({len(questions)} questions)")
    out["quality"] = {}
    for mode in ("vector", "bm25", "hybrid"):
        r = evaluate(lib, "corpus", questions, mode)
        out["quality"][mode] = r
        print(f"{mode:10} {r['recall@5']:9.3f} {r['mrr@10']:8.3f}")
    return lib


def _chunk_texts(lib: DocumentLibrary) -> list[str]:
    store = DocumentStore(lib.folder / "documents.sqlite")
    rows = store.db.execute(
        "SELECT c.text, c.heading, d.path, c.tokens FROM chunks c "
        "JOIN documents d ON d.id = c.document_id ORDER BY c.id"
    ).fetchall()
    emb = lib.embedder
    return [
        emb.passage_input(f"{Path(p).name} › {h}" if h else Path(p).name, t, n)
        for t, h, p, n in rows
    ]


def part_embed(lib: DocumentLibrary, out: dict[str, Any], limit: int) -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    texts = _chunk_texts(lib)[:limit]
    folder = str(lib.embedder.folder)
    questions = json.loads(QUESTIONS.read_text(encoding="utf-8"))
    rows = []

    def timed(name: str, model: Any, **kw: Any) -> np.ndarray:
        model.encode(texts[:64], **kw)  # warm up
        t0 = time.perf_counter()
        vecs = model.encode(
            texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False, **kw
        )
        secs = time.perf_counter() - t0
        rows.append(
            {
                "backend": name,
                "chunks": len(texts),
                "seconds": secs,
                "chunks_per_s": len(texts) / secs,
            }
        )
        return np.asarray(vecs, dtype=np.float32)

    base = SentenceTransformer(folder, device="cpu", local_files_only=True)
    ref = timed("torch fp32 (sentence-transformers defaults)", base)
    with torch.inference_mode():
        timed("torch fp32, batch 64", base, batch_size=64)
    q8 = torch.ao.quantization.quantize_dynamic(
        SentenceTransformer(folder, device="cpu", local_files_only=True),
        {torch.nn.Linear},
        dtype=torch.qint8,
    )
    v8 = timed("torch int8 dynamic quantisation", q8)
    bf = SentenceTransformer(
        folder, device="cpu", local_files_only=True, model_kwargs={"torch_dtype": torch.bfloat16}
    )
    vbf = timed("torch bfloat16", bf)
    base_rate = rows[0]["chunks_per_s"]
    # Recall of each backend: rank the sample's chunks for each question by that backend's
    # vectors and compare the top 5 with the fp32 top 5 (agreement, not ground truth).
    qref = base.encode([q["question"] for q in questions], normalize_embeddings=True)
    agreements = {}
    for name, vecs, model in (
        ("torch int8 dynamic quantisation", v8, q8),
        ("torch bfloat16", vbf, bf),
    ):
        qv = model.encode([q["question"] for q in questions], normalize_embeddings=True)
        same = 0.0
        for i in range(len(questions)):
            top_ref = set(np.argsort(-(ref @ qref[i]))[:5])
            top = set(np.argsort(-(np.asarray(vecs) @ np.asarray(qv[i], dtype=np.float32)))[:5])
            same += len(top_ref & top) / 5
        agreements[name] = same / len(questions)
    print(f"\n{'embedding backend':44} {'chunks/s':>9} {'vs torch':>9} {'top-5 agreement':>16}")
    for r in rows:
        r["ratio"] = r["chunks_per_s"] / base_rate
        r["top5_agreement_with_fp32"] = agreements.get(r["backend"], 1.0)
        print(
            f"{r['backend']:44} {r['chunks_per_s']:9.1f} {r['ratio']:8.2f}x "
            f"{r['top5_agreement_with_fp32']:16.3f}"
        )
    out["embed"] = rows


def part_latency(lib: DocumentLibrary, work: Path, out: dict[str, Any]) -> None:
    src = DocumentStore(lib.folder / "documents.sqlite")
    rows = src.db.execute("SELECT text, heading, tokens, embedding FROM chunks").fetchall()
    questions = [q["question"] for q in json.loads(QUESTIONS.read_text(encoding="utf-8"))]
    rng = np.random.default_rng(0)
    out["latency"] = {}
    print(f"\n{'chunks':>8} {'search p50':>11} {'p95':>8} {'retrieval-only p50':>19} {'p95':>8}")
    for size in (10_000, 100_000):
        lib_n = DocumentLibrary(work / f"scale{size}", Settings.load(None), lib.embedder)
        lib_n.create("scale", [str(work)])
        store = DocumentStore(lib_n.folder / "documents.sqlite")
        col = store.collection("scale")
        per_doc = 50
        for d in range(size // per_doc):
            chunks, vecs = [], []
            for k in range(per_doc):
                text, heading, tokens, blob = rows[(d * per_doc + k) % len(rows)]
                v = np.frombuffer(blob, dtype=np.float32) + rng.normal(0, 0.01, 384).astype(
                    np.float32
                )
                vecs.append(v / np.linalg.norm(v))
                chunks.append(NewChunk(k, text, heading, None, 0, len(text), 1, 1, tokens))
            store.replace_chunks(
                col,
                f"/synthetic/{d}.txt",
                kind="text",
                size=1,
                mtime_ns=1,
                sha256="-",
                pages=None,
                reason=None,
                chunks=chunks,
                embeddings=np.stack(vecs),
            )
        store.close()
        lib_n.search("scale", "warm up")  # fills chromadb from SQLite
        full, only = [], []
        for q in questions:
            t0 = time.perf_counter()
            lib_n.search("scale", q)
            full.append(time.perf_counter() - t0)
        qvecs = lib.embedder.embed(questions)
        from engine.documents import retrieval
        from engine.documents.vectors import VectorIndex

        store = DocumentStore(lib_n.folder / "documents.sqlite")
        vectors = VectorIndex(lib_n.folder / "vectors", store)
        col = store.collection("scale")
        for q, qv in zip(questions, qvecs, strict=True):
            t0 = time.perf_counter()
            vh = vectors.query(col, qv, 30)
            retrieval.search(store, col, qv, vh, q, top_k=6, min_score=0.3)
            only.append(time.perf_counter() - t0)
        r = {
            "p50_ms": _pct(full, 50),
            "p95_ms": _pct(full, 95),
            "retrieval_only_p50_ms": _pct(only, 50),
            "retrieval_only_p95_ms": _pct(only, 95),
        }
        out["latency"][str(size)] = r
        print(
            f"{size:8,} {r['p50_ms']:9.1f}ms {r['p95_ms']:6.1f}ms "
            f"{r['retrieval_only_p50_ms']:17.1f}ms {r['retrieval_only_p95_ms']:6.1f}ms"
        )


def part_resync(embedder: Embedder, work: Path, out: dict[str, Any]) -> None:
    files = work / "tenk"
    files.mkdir()
    for i in range(10_000):
        sub = files / f"d{i // 500:02}"
        sub.mkdir(exist_ok=True)
        (sub / f"n{i:05}.txt").write_text(f"Note {i}: shelf {i % 97}, bin {i % 13}.\n")
    lib = DocumentLibrary(work / "tenk-index", Settings.load(None), embedder)
    lib.create("tenk", [str(files)])
    t0 = time.perf_counter()
    first = sync(lib, "tenk")
    t_first = time.perf_counter() - t0
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        again = sync(lib, "tenk")
        times.append(time.perf_counter() - t0)
        assert again.unchanged == 10_000 and again.indexed == 0
    out["resync"] = {
        "files": first.indexed,
        "first_sync_s": t_first,
        "unchanged_resync_s": statistics.median(times),
    }
    print(
        f"\n10,000 files: first sync {t_first:.1f} s; unchanged re-sync "
        f"{statistics.median(times):.2f} s (median of 3)"
    )


def _pct(values: list[float], p: int) -> float:
    return float(np.percentile(np.array(values) * 1000, p))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--parts", default="quality,embed,latency,resync")
    parser.add_argument(
        "--embed-limit", type=int, default=3000, help="chunks used to compare embedding backends"
    )
    args = parser.parse_args()
    if not args.corpus.is_dir():
        sys.exit(
            f"corpus {args.corpus} not found: apt-get install python3.11-doc, or pass --corpus"
        )
    parts = set(args.parts.split(","))
    out: dict[str, Any] = {"corpus": str(args.corpus), "cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="hearth-bench-docs-") as tmp:
        work = Path(tmp)
        lib = part_quality(args, work, out)
        if "embed" in parts:
            part_embed(lib, out, args.embed_limit)
        if "latency" in parts:
            part_latency(lib, work, out)
        if "resync" in parts:
            part_resync(lib.embedder, work, out)
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    path = results / f"documents-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(out, indent=2))
    print(f"\nwrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
