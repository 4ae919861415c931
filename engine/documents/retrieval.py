"""Hybrid retrieval: vector search and BM25, fused by reciprocal rank fusion.

Vector search finds passages that mean the same thing in other words; BM25 (SQLite FTS5) finds
exact names, numbers and rare terms that embeddings blur. Reciprocal rank fusion (Cormack et
al., 2009) combines the two rankings without calibrating their scores. Every hit then gets its
exact cosine similarity from the embedding stored in SQLite, which is what the relevance
threshold is applied to: a BM25-only hit on a common word is not "relevant" by itself.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from engine.documents.store import ChunkRow, Collection, DocumentStore

log = logging.getLogger(__name__)

RRF_K = 60
MODES = ("hybrid", "vector", "bm25")


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    path: str
    page: int | None
    heading: str | None
    text: str
    line_start: int
    line_end: int
    char_start: int
    char_end: int
    score: float  # fused (RRF) score; higher is better
    similarity: float  # cosine similarity of question and passage, 0..1 in practice
    vector_rank: int | None
    bm25_rank: int | None
    bm25: float | None
    ocr: bool = False  # the text was recognised from a scanned page
    sha256: str | None = None  # of the document's file when it was read

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def fuse(rankings: list[list[int]], k: int = RRF_K) -> dict[int, float]:
    """Reciprocal rank fusion of ranked id lists (best first)."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, chunk_id in enumerate(ranking, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (k + rank)
    return scores


def search(
    store: DocumentStore,
    collection: Collection,
    query_vector: np.ndarray | None,
    vector_hits: list[tuple[int, float]],
    query: str,
    *,
    top_k: int,
    min_score: float,
    mode: str = "hybrid",
    similarity: Callable[[list[int]], dict[int, float]] | None = None,
) -> list[Hit]:
    """Rank passages for `query`. `vector_hits` come from the vector index (may be empty
    when it is unavailable); `query_vector` gives every hit its exact similarity, from the
    embeddings in our store, or from `similarity` (chunk ids -> cosine similarity) for a
    collection whose vectors are elsewhere (a shared collection's are on its server)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    candidates = max(top_k * 5, 30)
    vec_ranking = [i for i, _ in vector_hits] if mode != "bm25" else []
    bm25_hits = store.bm25(collection, query, candidates) if mode != "vector" else []
    bm25_ranking = [i for i, _ in bm25_hits]
    fused = fuse([r for r in (vec_ranking, bm25_ranking) if r])
    if not fused:
        return []
    rows = store.chunks_by_id(fused)
    if similarity is not None and query_vector is not None:
        exact = similarity(list(rows))
    else:
        exact = _similarities(store, list(rows), query_vector)
    vec_rank = {i: r for r, i in enumerate(vec_ranking, start=1)}
    bm_rank = {i: r for r, i in enumerate(bm25_ranking, start=1)}
    bm_score = dict(bm25_hits)
    ordered = sorted(rows.values(), key=lambda r: (-fused[r.id], r.id))
    hits: list[Hit] = []
    kept_shingles: list[set[str]] = []
    for row in ordered:
        sim = exact.get(row.id, 0.0)
        if query_vector is not None and sim < min_score:
            continue
        shingles = _shingles(row.text)
        if any(_jaccard(shingles, other) >= 0.8 for other in kept_shingles):
            continue  # the same passage again (a copied file, a repeated boilerplate block)
        kept_shingles.append(shingles)
        hits.append(
            _hit(
                row,
                fused[row.id],
                sim,
                vec_rank.get(row.id),
                bm_rank.get(row.id),
                bm_score.get(row.id),
            )
        )
        if len(hits) >= top_k:
            break
    return hits


def _hit(
    row: ChunkRow,
    score: float,
    sim: float,
    vrank: int | None,
    brank: int | None,
    bm25: float | None,
) -> Hit:
    return Hit(
        row.id,
        row.path,
        row.page,
        row.heading,
        row.text,
        row.line_start,
        row.line_end,
        row.char_start,
        row.char_end,
        score,
        sim,
        vrank,
        brank,
        bm25,
        row.ocr,
        row.sha256,
    )


def _similarities(
    store: DocumentStore, ids: list[int], query_vector: np.ndarray | None
) -> dict[int, float]:
    if query_vector is None or not ids:
        return {}
    q = np.asarray(query_vector, dtype=np.float32)
    return {i: float(np.dot(v, q)) for i, v in store.embeddings(ids).items()}


_WORD = re.compile(r"\w+")


def _shingles(text: str, n: int = 5) -> set[str]:
    words = _WORD.findall(text.lower())
    if len(words) <= n:
        return {" ".join(words)}
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def _jaccard(a: set[str], b: set[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)
