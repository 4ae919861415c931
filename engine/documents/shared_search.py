"""Searching a shared collection (documents/shared.py): the question's vector goes to the
Chroma server, its words are matched in the local cache, and both are fused by
`retrieval.search` as for a local collection, so callers get the same hits with the same
citation fields."""

from __future__ import annotations

import numpy as np

from engine.documents import retrieval, shared_cache
from engine.documents.chroma_remote import open_server
from engine.documents.shared import DocumentLibrary, remote_collection
from engine.documents.store import Collection, DocumentStore
from engine.errors import DocumentError


def search(
    library: DocumentLibrary,
    store: DocumentStore,
    col: Collection,
    query: str,
    *,
    top_k: int,
    min_score: float,
    mode: str,
    notes: list[str],
) -> list[retrieval.Hit]:
    """Hits for `query` in a shared collection: vectors asked of the server, words matched in
    the local cache, fused as for a local collection. Raises ServerError when the server
    cannot answer (after retrying a dropped connection)."""
    assert col.shared is not None
    if col.shared.synced is None:
        raise DocumentError(f"“{col.name}” has not been downloaded yet; sync it first.")
    query_vector = library.embedder_for(col.embedder).embed_query(query)
    similarity: dict[int, float] = {}
    vector_hits: list[tuple[int, float]] = []
    with open_server(library.settings, col.shared.server, library.chroma_pool) as remote:
        rcol = remote_collection(remote, col)
        if mode != "bm25":
            k = max(top_k * 5, 30)
            res = remote.call(
                "searching",
                lambda: rcol.query(
                    query_embeddings=[query_vector], n_results=k, include=["distances"]
                ),
            )
            rids = [str(i) for i in res["ids"][0]]
            known = shared_cache.local_ids(store, col, rids)
            for rid, distance in zip(rids, res["distances"][0], strict=True):
                if rid in known:
                    vector_hits.append((known[rid], 1.0 - float(distance)))
                    similarity[known[rid]] = 1.0 - float(distance)
            if len(known) < len(rids):
                notes.append(
                    f"{len(rids) - len(known)} passages found on the server are newer than "
                    f"this computer's copy of “{col.name}”; sync it to quote them."
                )

        def exact(ids: list[int]) -> dict[int, float]:
            """Cosine similarity of each hit: from the server's distances, and for passages
            found by words only, from their vectors fetched from the server."""
            wanted = shared_cache.remote_ids(store, [i for i in ids if i not in similarity])
            if wanted:
                got = remote.call(
                    "fetching vectors",
                    lambda: rcol.get(ids=list(wanted.values()), include=["embeddings"]),
                )
                vectors = dict(zip(got["ids"], got["embeddings"], strict=True))
                q = np.asarray(query_vector, dtype=np.float32)
                for local, rid in wanted.items():
                    if rid in vectors:
                        v = np.asarray(vectors[rid], dtype=np.float32)
                        similarity[local] = float(np.dot(v, q))
            return {i: similarity[i] for i in ids if i in similarity}

        return retrieval.search(
            store,
            col,
            query_vector,
            vector_hits,
            query,
            top_k=top_k,
            min_score=min_score,
            mode=mode,
            similarity=exact,
        )
