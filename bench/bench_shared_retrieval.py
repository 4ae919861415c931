"""Retrieval latency: a shared collection on a Chroma server against the same passages in the
embedded chromadb, through the raw vector query and through Hearth's whole search.

    /work/main/.venv/bin/python bench/bench_shared_retrieval.py [--n 100000] [--queries 50]

N passages (default 100,000) are real English paragraphs (the GPL's, cycled, numbered so no two
are equal) with RANDOM unit vectors of the embedder's dimension (384): embedding 100,000 texts
with all-MiniLM-L6-v2 takes the best part of an hour on this 2-core machine, and latency does
not depend on what the vectors mean. The questions are real, embedded by the real embedder.
The passages are stored in a local collection (our SQLite store, then the embedded chromadb),
published with `shared.publish` to a `chroma run` on 127.0.0.1 (its own process, as a team's
server would be, but on the same two cores), and attached in a second data folder.

Rows:
  embedded raw     chromadb PersistentClient, collection.query, k=30 (the index warm)
  server raw       chromadb HttpClient to the server, collection.query, k=30 (one client)
  embed question   the real embedder on one question (torch, CPU): left out of the rows
                   below, where each question's vector is computed once and reused
  hearth local     DocumentLibrary.search (hybrid) on the local collection: vector query,
                   BM25, fusion, exact similarities
  hearth shared    the same on the shared collection (the library's connection kept open; the
                   policy checked at each request): get the collection and check its
                   embedder, the vector query, and the vectors of word-only hits
  ... vec          the same two with mode="vector" (no word matching): the prose is 200
                   paragraphs cycled, so a question's words match tens of thousands of
                   passages and BM25 dominates the hybrid rows, for both alike
Plus one-off times: filling the embedded index, publishing, attaching (downloading the cache).
Prints a table and writes bench/results/shared-retrieval-<time>.json.
"""

from __future__ import annotations

import argparse
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

import numpy as np  # noqa: E402

from engine.documents.embedder import Embedder  # noqa: E402
from engine.documents.events import IndexDone, Published  # noqa: E402
from engine.documents.library import DocumentLibrary  # noqa: E402
from engine.documents.store import DocumentStore, NewChunk  # noqa: E402
from engine.settings import Settings  # noqa: E402
from tests.chroma_server import ChromaProcess  # noqa: E402
from tests.doc_files import real_prose  # noqa: E402

QUESTIONS = [
    "Can I charge a fee for giving copies of the program to others?",
    "What happens to my licence if I violate the terms?",
    "Do I have to provide the source code when I convey object code?",
    "Is there any warranty for the program?",
    "How does the licence treat patents held by contributors?",
    "May I add further restrictions on the recipients?",
    "What counts as the corresponding source?",
    "Can the licence be applied to libraries that proprietary programs link to?",
    "What must an interactive program show when it starts?",
    "Who is liable for damages arising from use of the program?",
]
PER_DOC = 100  # passages per synthetic document


class MemoEmbedder:
    """The real embedder, each question embedded once: torch on a shared 2-core machine takes
    15 to 500 ms per question at random, which would drown what is measured here."""

    def __init__(self, embedder: Embedder) -> None:
        self.inner = embedder
        self.model_id = embedder.model_id
        self.dimensions = embedder.dimensions
        self.memo: dict[str, Any] = {}

    def embed_query(self, text: str) -> Any:
        if text not in self.memo:
            self.memo[text] = self.inner.embed_query(text)
        return self.memo[text]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def fill_local(lib: DocumentLibrary, n: int, dims: int) -> None:
    """N passages of real prose with random unit vectors, written as the indexer writes them."""
    paragraphs = real_prose(200)
    rng = np.random.default_rng(0)
    lib.create("bench", [])
    store = DocumentStore(lib.folder / "documents.sqlite")
    col = store.collection("bench")
    try:
        for doc in range(0, n, PER_DOC):
            count = min(PER_DOC, n - doc)
            chunks = []
            offset = 0
            for i in range(count):
                text = f"{paragraphs[(doc + i) % len(paragraphs)]} (passage {doc + i})"
                chunks.append(
                    NewChunk(i, text, None, 1 + i // 10, offset, offset + len(text), i, i, 60)
                )
                offset += len(text) + 1
            vectors = rng.standard_normal((count, dims)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            store.replace_chunks(
                col,
                f"/bench/doc-{doc // PER_DOC:05d}.txt",
                kind="text",
                size=offset,
                mtime_ns=0,
                sha256=f"{doc:064x}",
                pages=None,
                reason=None,
                chunks=chunks,
                embeddings=vectors,
            )
    finally:
        store.close()


def timed(fn: Any, queries: list[Any], n: int) -> list[float]:
    out = []
    for i in range(n):
        q = queries[i % len(queries)]
        t0 = time.perf_counter()
        fn(q)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="passages")
    ap.add_argument("--queries", type=int, default=50, help="timed searches per row")
    ap.add_argument("--work", type=Path, default=None, help="folder to keep (default: temp)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = args.work or Path(tempfile.mkdtemp(prefix="hearth-bench-shared-"))
    os.environ["HEARTH_HOME"] = str(work / "home")
    real = Embedder()
    embedder: Any = MemoEmbedder(real)
    dims = embedder.dimensions
    vectors = [embedder.embed_query(q) for q in QUESTIONS]  # also loads the model, untimed
    results: dict[str, Any] = {"n": args.n, "queries": args.queries, "dims": dims, "rows": {}}
    timings: dict[str, float] = {}

    with ChromaProcess(work / "chroma") as server:
        settings = Settings.load(None)
        settings.set("remote.chroma_servers", [server.url])
        laptop_a = DocumentLibrary(work / "a", settings, embedder)
        t0 = time.perf_counter()
        fill_local(laptop_a, args.n, dims)
        timings["write_store_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        laptop_a.search("bench", QUESTIONS[0])  # the first search fills the embedded index
        timings["fill_embedded_index_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        done = [e for e in laptop_a.publish("bench", server.url) if isinstance(e, Published)]
        timings["publish_s"] = time.perf_counter() - t0
        assert done and done[0].passages == args.n, done

        laptop_b = DocumentLibrary(work / "b", settings, embedder)
        t0 = time.perf_counter()
        attached = [e for e in laptop_b.attach(server.url, "bench") if isinstance(e, IndexDone)]
        timings["attach_s"] = time.perf_counter() - t0
        assert attached and attached[0].chunks_added == args.n

        import chromadb

        local = laptop_a._vector_client["client"]  # the library's open embedded client
        store = DocumentStore(work / "a" / "documents.sqlite")
        local_col = local.get_collection(
            f"hearth-{store.collection('bench').id}", embedding_function=None
        )
        store.close()
        remote = chromadb.HttpClient(host="127.0.0.1", port=server.port)
        remote_col = remote.get_collection("bench", embedding_function=None)
        rows = {
            "embedded raw": lambda v: local_col.query(
                query_embeddings=[v], n_results=30, include=["distances"]
            ),
            "server raw": lambda v: remote_col.query(
                query_embeddings=[v], n_results=30, include=["distances"]
            ),
        }
        rows["embed question"] = lambda v: real.embed_query("What is the licence? " * 3)
        for name, fn in rows.items():
            fn(vectors[0])  # warm
            results["rows"][name] = timed(fn, vectors, args.queries)
        searches = [
            ("hearth local", laptop_a, "hybrid"),
            ("hearth shared", laptop_b, "hybrid"),
            ("hearth local vec", laptop_a, "vector"),
            ("hearth shared vec", laptop_b, "vector"),
        ]
        for name, lib, mode in searches:
            lib.search("bench", QUESTIONS[0], mode=mode)  # warm

            def search(q: str, lib: DocumentLibrary = lib, mode: str = mode) -> None:
                lib.search("bench", q, mode=mode)

            results["rows"][name] = timed(search, QUESTIONS, args.queries)
        remote.close()

    results["timings"] = timings
    summary = {
        name: {
            "p50_ms": statistics.median(ms),
            "p95_ms": percentile(ms, 0.95),
            "mean_ms": statistics.fmean(ms),
        }
        for name, ms in results["rows"].items()
    }
    results["summary"] = summary
    header = (
        f"{'system':18} {'passages':>9} {'queries':>8} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8}"
    )
    print(header)
    print("-" * len(header))
    for name, m in summary.items():
        print(
            f"{name:18} {args.n:9d} {args.queries:8d} {m['p50_ms']:8.1f} {m['p95_ms']:8.1f} "
            f"{m['mean_ms']:8.1f}"
        )
    print()
    for key, value in timings.items():
        print(f"{key:24} {value:8.1f}")
    out = ROOT / "bench" / "results" / f"shared-retrieval-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"\nwrote {out.relative_to(ROOT)}")
    print(json.dumps({"n": args.n, "summary": summary, "timings": timings}))
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)  # ~1 GB at 100k passages


if __name__ == "__main__":
    main()
