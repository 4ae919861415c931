"""Retrieval quality on questions nobody here tuned for, beside a naive peer pipeline.

    apt-get install git-doc sqlite3-doc postgresql-doc-15 chromium
    .venv/bin/python bench/corpora/make_pdf_corpus.py          # PostgreSQL pages printed to PDF
    .venv/bin/python bench/bench_retrieval.py [--split dev|test] [--corpora git-doc,...]
                                              [--systems naive,hearth] [--fresh]

The questions (bench/questions/*.json) were written from the documents by people who never saw
Hearth's retrieval code or any ranking. Each names the file that answers it and a `key`: a phrase
copied from the passage a reader needs. A question's split is fixed by a hash of its id, so
nobody chooses it: about 40% `dev` (what changes are tried on) and 60% `test` (run only to
report, after the changes are chosen).

Two systems index the same files with the same text extraction (Hearth's loaders):
  naive   the pipeline peers ship (AnythingLLM's defaults): 1000-character chunks with 20
          characters of overlap (a recursive character splitter), all-MiniLM-L6-v2 on the
          chunk text, chromadb cosine search;
  hearth  Hearth's own index and search, end to end (walk, parse child, chunk, embed, store,
          hybrid search), as the app runs it, with no relevance threshold;
  hearth-bge  the same with the collection's embedder set to bge-small-en-v1.5 (int8).

For each question both return their 20 best passages. Reported per corpus:
  file recall@5    the right file is among the first 5 distinct files of those passages
  file MRR         1 / rank of the right file among the distinct files (0 past 20 passages)
  passage recall@5 one of the first 5 passages is from the right file and holds the key
                   (case and whitespace ignored); on PDFs it must also be on the key's page
  query p50/p95    milliseconds per question, embedding the question included
Indexes are kept in --work between runs and rebuilt when the code that builds them changes.
Prints a table and writes bench/results/retrieval-<split>-<time>.json.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from engine import models  # noqa: E402
from engine.documents import loaders  # noqa: E402
from engine.documents.embedder import for_model  # noqa: E402
from engine.documents.events import IndexDone  # noqa: E402
from engine.documents.library import DocumentLibrary  # noqa: E402
from engine.settings import Settings  # noqa: E402

QUESTIONS = ROOT / "bench" / "questions"
TOP = 20
# Raise it when a change to reading or chunking must re-index what is kept (or use --fresh).
INDEX_VERSION = 1


@dataclass(frozen=True)
class Passage:
    path: str  # relative to the corpus root
    page: int | None
    text: str


def split_of(question_id: str) -> str:
    return "dev" if hashlib.sha256(question_id.encode()).digest()[0] % 10 < 4 else "test"


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def corpus_files(spec: dict[str, Any]) -> list[Path]:
    root = Path(spec["root"])
    return sorted(p for p in root.glob(spec["files"]) if p.is_file())


# -- the naive peer pipeline -------------------------------------------------------------------


def recursive_split(text: str, size: int = 1000, overlap: int = 20) -> list[str]:
    """LangChain's RecursiveCharacterTextSplitter (what AnythingLLM uses), rewritten: split on
    the first separator present, recurse into pieces still too long, merge small pieces back
    up to `size` characters, carrying up to `overlap` characters into the next chunk."""

    def with_regex(text: str, sep: str) -> list[str]:
        if not sep:
            return list(text)
        parts = re.split(f"({re.escape(sep)})", text)
        pieces = [parts[i] + parts[i + 1] for i in range(1, len(parts) - 1, 2)]
        if len(parts) % 2 == 0:
            pieces += parts[-1:]
        return [p for p in [parts[0], *pieces] if p]

    def merge(splits: list[str]) -> list[str]:
        docs: list[str] = []
        current: list[str] = []
        total = 0
        for d in splits:
            if total + len(d) > size and current:
                doc = "".join(current).strip()
                if doc:
                    docs.append(doc)
                while total > overlap or (total + len(d) > size and total > 0):
                    total -= len(current[0])
                    current = current[1:]
            current.append(d)
            total += len(d)
        doc = "".join(current).strip()
        if doc:
            docs.append(doc)
        return docs

    def split(text: str, separators: list[str]) -> list[str]:
        sep, rest = separators[-1], []
        for i, s in enumerate(separators):
            if s == "":
                sep = s
                break
            if s in text:
                sep, rest = s, separators[i + 1 :]
                break
        out: list[str] = []
        good: list[str] = []
        for piece in with_regex(text, sep):
            if len(piece) < size:
                good.append(piece)
                continue
            if good:
                out += merge(good)
                good = []
            out += split(piece, rest) if rest else [piece]
        if good:
            out += merge(good)
        return out

    return split(text, ["\n\n", "\n", " ", ""])


def page_of(pages: list[int], offset: int) -> int | None:
    if not pages:
        return None
    page = 1
    for i, start in enumerate(pages, 1):
        if start <= offset:
            page = i
    return page


def naive_index(client: Any, root: Path, paths: list[Path], model: Any) -> dict[str, Any]:
    """The naive pipeline's indexing: Hearth's loaders for the text, `recursive_split`, the
    model's `encode` with sentence-transformers' defaults (float32, batches of 32), chromadb
    `add` with the vectors given. `chars` counts the extracted text of the files read."""
    col = client.create_collection(
        "naive", metadata={"hnsw:space": "cosine"}, embedding_function=None
    )
    t0 = time.perf_counter()
    ids: list[str] = []
    docs: list[str] = []
    metas: list[dict[str, Any]] = []
    files = chars = 0
    for path in paths:
        kind = loaders.kind_for(path)
        if kind is None:
            continue
        try:
            ex = loaders.load(path, kind)
        except (loaders.Skip, loaders.Fail):
            continue
        files += 1
        chars += len(ex.text)
        pos = 0
        for i, chunk in enumerate(recursive_split(ex.text)):
            at = ex.text.find(chunk[:50], pos)
            pos = at if at >= 0 else pos
            page = page_of(ex.pages, pos)
            ids.append(f"{path.relative_to(root)}#{i}")
            docs.append(chunk)
            metas.append({"path": str(path.relative_to(root)), "page": page or 0})
    for start in range(0, len(docs), 512):
        vecs = model.encode(
            docs[start : start + 512], normalize_embeddings=True, show_progress_bar=False
        )
        col.add(
            ids=ids[start : start + 512],
            documents=docs[start : start + 512],
            metadatas=metas[start : start + 512],  # type: ignore[arg-type]
            embeddings=np.asarray(vecs, dtype=np.float32),  # type: ignore[arg-type]
        )
    return {
        "files": files,
        "passages": len(docs),
        "chars": chars,
        "seconds": time.perf_counter() - t0,
    }


class Naive:
    name = "naive"

    def __init__(self, spec: dict[str, Any], work: Path, model: Any, fresh: bool) -> None:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        self.model = model
        folder = work / "naive"
        marker = folder / "done.json"
        self.client = chromadb.PersistentClient(
            str(folder), settings=ChromaSettings(anonymized_telemetry=False)
        )
        if fresh or not marker.exists():
            for c in self.client.list_collections():
                self.client.delete_collection(c.name)
            self.index_info = self._index(spec)
            marker.write_text(json.dumps(self.index_info))
        else:
            self.index_info = json.loads(marker.read_text())
        # embedding_function=None: chromadb's default would download a model.
        self.collection = self.client.get_collection("naive", embedding_function=None)

    def _index(self, spec: dict[str, Any]) -> dict[str, Any]:
        return naive_index(self.client, Path(spec["root"]), corpus_files(spec), self.model)

    def search(self, question: str) -> list[Passage]:
        vec = self.model.encode([question], normalize_embeddings=True, show_progress_bar=False)
        res = self.collection.query(query_embeddings=np.asarray(vec), n_results=TOP)
        out = []
        for doc, meta in zip(res["documents"][0], res["metadatas"][0], strict=True):  # type: ignore[index]
            page = int(meta["page"]) or None  # type: ignore[arg-type]
            out.append(Passage(str(meta["path"]), page, doc))
        return out


# -- Hearth ------------------------------------------------------------------------------------


class Hearth:
    def __init__(
        self, spec: dict[str, Any], work: Path, model: Any, fresh: bool, embedder_id: str
    ) -> None:
        self.root = Path(spec["root"])
        embedder = for_model(embedder_id)
        code = hashlib.sha256(f"{INDEX_VERSION} {embedder.model_id}".encode()).hexdigest()[:12]
        folder = work / f"hearth-{code}"
        marker = folder / "done.json"
        self.lib = DocumentLibrary(folder, Settings.load(None), embedder)
        if fresh or not marker.exists():
            for info in self.lib.collections():
                self.lib.delete(info.name)
            # The same files as the naive pipeline, not the whole folder.
            self.lib.create("corpus", [str(p) for p in corpus_files(spec)])
            t0 = time.perf_counter()
            done = None
            for event in self.lib.sync("corpus"):
                if isinstance(event, IndexDone):
                    done = event
            assert done is not None
            self.index_info = {
                "files": done.indexed,
                "failed": done.failed,
                "passages": done.chunks_added,
                "seconds": time.perf_counter() - t0,
            }
            marker.write_text(json.dumps(self.index_info))
        else:
            self.index_info = json.loads(marker.read_text())
        self.lib.search("corpus", "warm up", top_k=5)

    def search(self, question: str) -> list[Passage]:
        hits = self.lib.search("corpus", question, top_k=TOP, min_score=0.0).hits
        return [Passage(str(Path(h.path).relative_to(self.root)), h.page, h.text) for h in hits]


SYSTEMS: dict[str, Callable[..., Any]] = {
    "naive": Naive,
    "hearth": functools.partial(Hearth, embedder_id=models.BUNDLED_EMBEDDER.id),
    "hearth-bge": functools.partial(Hearth, embedder_id=models.BUNDLED_EMBEDDER_BGE.id),
}


# -- scoring -----------------------------------------------------------------------------------


def score(question: dict[str, Any], passages: list[Passage]) -> dict[str, Any]:
    right = {question["file"], *question.get("also", [])}
    files: list[str] = []
    for p in passages:
        if p.path not in files:
            files.append(p.path)
    rank = next((i for i, f in enumerate(files, 1) if f in right), None)
    key = norm(question["key"])
    page = question.get("page")
    holds = any(
        p.path in right and key in norm(p.text) and (page is None or p.page == page)
        for p in passages[:5]
    )
    return {
        "file_rank": rank,
        "file_recall@5": 1.0 if rank is not None and rank <= 5 else 0.0,
        "file_mrr": 1.0 / rank if rank else 0.0,
        "passage_recall@5": 1.0 if holds else 0.0,
    }


def run_corpus(
    spec: dict[str, Any], split: str, systems: list[str], work: Path, model: Any, fresh: bool
) -> dict[str, Any]:
    questions = [q for q in spec["questions"] if split_of(q["id"]) == split]
    out: dict[str, Any] = {"questions": len(questions), "systems": {}}
    for name in systems:
        system = SYSTEMS[name](spec, work / spec["corpus"], model, fresh)
        per_q = []
        times = []
        for q in questions:
            t0 = time.perf_counter()
            passages = system.search(q["question"])
            times.append((time.perf_counter() - t0) * 1000)
            per_q.append({"id": q["id"], **score(q, passages)})
        metrics = {
            m: statistics.fmean(r[m] for r in per_q)
            for m in ("file_recall@5", "file_mrr", "passage_recall@5")
        }
        metrics["query_p50_ms"] = statistics.median(times)
        metrics["query_p95_ms"] = float(np.percentile(times, 95))
        out["systems"][name] = {"index": system.index_info, **metrics, "per_question": per_q}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--split", choices=("dev", "test"), default="dev")
    ap.add_argument("--corpora", default="", help="comma-separated names (default: all)")
    ap.add_argument("--systems", default="naive,hearth,hearth-bge")
    ap.add_argument("--work", type=Path, default=Path.home() / ".cache/hearth/bench-retrieval")
    ap.add_argument("--fresh", action="store_true", help="re-index even if an index is kept")
    ap.add_argument("--questions", type=Path, default=QUESTIONS, help="folder of question sets")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(
        str(models.BUNDLED_EMBEDDER.path()), device="cpu", local_files_only=True
    )
    wanted = [c for c in args.corpora.split(",") if c]
    specs = [
        json.loads(p.read_text(encoding="utf-8")) for p in sorted(args.questions.glob("*.json"))
    ]
    specs = [s for s in specs if not wanted or s["corpus"] in wanted]
    systems = [s for s in args.systems.split(",") if s]
    results: dict[str, Any] = {"split": args.split, "corpora": {}}
    if args.split == "test":
        print("TEST SPLIT: for reporting only; change nothing because of what it shows.\n")
    for spec in specs:
        results["corpora"][spec["corpus"]] = run_corpus(
            spec, args.split, systems, args.work, model, args.fresh
        )
    header = (
        f"{'corpus':16} {'system':10} {'n':>4} {'file R@5':>9} {'file MRR':>9} "
        f"{'passage R@5':>12} {'p50 ms':>8} {'p95 ms':>8} {'passages':>9}"
    )
    print(header)
    print("-" * len(header))
    for corpus, r in results["corpora"].items():
        for name, m in r["systems"].items():
            print(
                f"{corpus:16} {name:10} {r['questions']:4d} {m['file_recall@5']:9.3f} "
                f"{m['file_mrr']:9.3f} {m['passage_recall@5']:12.3f} {m['query_p50_ms']:8.1f} "
                f"{m['query_p95_ms']:8.1f} {m['index']['passages']:9d}"
            )
    out = (
        ROOT / "bench" / "results" / f"retrieval-{args.split}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    )
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
