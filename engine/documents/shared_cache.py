"""The local cache of a shared collection, in our document store.

A collection attached from a Chroma server keeps its passages here as ordinary document and
chunk rows (so word matching, the sources list and quotes work as for a local collection),
each chunk with the server's id (`remote_id`) and no vector (an empty embedding: the vectors
stay on the server). The cache is replaced whole from the server at each sync, in one
transaction: a search meanwhile sees the old cache, a failed download leaves it as it was, and
deleting it loses nothing that the server does not have.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from engine.documents.store import Collection, DocumentStore, Shared


@dataclass(frozen=True)
class Passage:
    """A passage as the server holds it: its id, text and metadata (see shared.py)."""

    remote_id: str
    text: str
    meta: dict[str, Any]


def attach(
    store: DocumentStore,
    name: str,
    embedder: str,
    chunk_tokens: int,
    chunk_overlap: int,
    shared: Shared,
) -> Collection:
    """A new local collection whose vectors live on `shared.server`; empty until filled."""
    col = store.create_collection(name, embedder, chunk_tokens, chunk_overlap)
    try:
        with store.transaction() as db:
            db.execute(
                "INSERT INTO shared_collections (collection_id, server, remote_name, "
                "dimensions, synced) VALUES (?, ?, ?, ?, NULL)",
                (col.id, shared.server, shared.remote_name, shared.dimensions),
            )
    except BaseException:
        store.delete_collection(col)
        raise
    return store.collection(name)


def replace(store: DocumentStore, col: Collection, passages: list[Passage]) -> dict[str, int]:
    """Make the cache of `col` exactly `passages`, in one transaction. Returns counts."""
    by_path: dict[str, list[Passage]] = {}
    for p in passages:
        by_path.setdefault(str(p.meta.get("path") or "(unknown)"), []).append(p)
    with store.transaction() as db:
        before = db.execute(
            "SELECT COUNT(*) FROM documents WHERE collection_id = ?", (col.id,)
        ).fetchone()[0]
        db.execute("DELETE FROM chunks WHERE collection_id = ?", (col.id,))
        db.execute("DELETE FROM documents WHERE collection_id = ?", (col.id,))
        now = time.time()
        for path, items in sorted(by_path.items()):
            items.sort(key=lambda p: int(p.meta.get("seq", 0)))
            first = items[0].meta
            cur = db.execute(
                "INSERT INTO documents (collection_id, path, kind, size, mtime_ns, sha256, "
                "status, reason, pages, chunk_count, updated) "
                "VALUES (?, ?, ?, ?, NULL, ?, 'indexed', NULL, ?, ?, ?)",
                (
                    col.id,
                    path,
                    first.get("kind"),
                    first.get("size"),
                    first.get("sha256"),
                    first.get("pages"),
                    len(items),
                    now,
                ),
            )
            doc_id = cur.lastrowid
            db.executemany(
                "INSERT INTO chunks (document_id, collection_id, seq, text, heading, page, "
                "char_start, char_end, line_start, line_end, tokens, embedding, ocr, "
                "remote_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, X'', ?, ?)",
                [
                    (
                        doc_id,
                        col.id,
                        int(p.meta.get("seq", i)),
                        p.text,
                        p.meta.get("heading"),
                        p.meta.get("page"),
                        int(p.meta.get("char_start", 0)),
                        int(p.meta.get("char_end", 0)),
                        int(p.meta.get("line_start", 0)),
                        int(p.meta.get("line_end", 0)),
                        int(bool(p.meta.get("ocr", False))),
                        p.remote_id,
                    )
                    for i, p in enumerate(items)
                ],
            )
        # The delete trigger queued these for the local vector index, which never had them.
        db.execute("DELETE FROM vector_deletions WHERE collection_id = ?", (col.id,))
        db.execute(
            "UPDATE shared_collections SET synced = ? WHERE collection_id = ?", (now, col.id)
        )
    return {"documents": len(by_path), "before": int(before), "passages": len(passages)}


def local_ids(store: DocumentStore, col: Collection, remote_ids: list[str]) -> dict[str, int]:
    """The cache's chunk ids of these server ids (those the cache has)."""
    out: dict[str, int] = {}
    for start in range(0, len(remote_ids), 500):
        part = remote_ids[start : start + 500]
        marks = ",".join("?" * len(part))
        for local, remote in store.db.execute(
            f"SELECT id, remote_id FROM chunks WHERE collection_id = ? AND remote_id IN ({marks})",
            (col.id, *part),
        ):
            out[str(remote)] = int(local)
    return out


def remote_ids(store: DocumentStore, ids: Iterable[int]) -> dict[int, str]:
    """The server ids of these cached chunks."""
    wanted = list(ids)
    out: dict[int, str] = {}
    for start in range(0, len(wanted), 500):
        part = wanted[start : start + 500]
        marks = ",".join("?" * len(part))
        for local, remote in store.db.execute(
            f"SELECT id, remote_id FROM chunks WHERE id IN ({marks}) AND remote_id IS NOT NULL",
            part,
        ):
            out[int(local)] = str(remote)
    return out
