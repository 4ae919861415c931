"""Shared collections: a collection's passages on a Chroma server, so that one indexing run
serves a team.

- `publish` pushes an indexed local collection to a server collection: ids, Hearth's own
  embeddings (read from our SQLite store; chromadb never computes one: every collection is
  opened with ``embedding_function=None``), the passage text as `documents`, and metadata enough
  to cite (file name, source path, page, heading, character and line span, the document's
  sha256, the chunk's index). The server collection's metadata records the embedder, its
  dimensions and our layout version, so that a subscriber asks with the same embedder and
  refuses a mismatch with a clear message. Publishing again makes the server's collection
  equal to the local one (upsert all, delete what went).
- `attach` registers a server collection locally and downloads its passages (text and
  metadata, no vectors) into a cache in our store (shared_cache.py); `refresh` (what `sync` does
  for such a collection) downloads it again. The cache serves word matching (BM25), the sources
  list and quotes; deleting it loses nothing.
- `shared_search.search` sends the vector query to the server (the question embedded here with the
  collection's embedder), matches words in the cache, and fuses both with `retrieval.search`,
  as for a local collection, so callers see the same hits with the same citation fields.

Who may write is the server's business: a token that may only read can attach and search;
`publish` then ends in ServerAuthFailed saying the server refused writing.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import uuid
from collections.abc import Generator
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from engine.documents import shared_cache
from engine.documents.chroma_remote import ChromaServer, open_server
from engine.documents.embedder import TextEmbedder
from engine.documents.events import IndexDone, IndexProgress, Published
from engine.documents.shared_cache import Passage
from engine.documents.store import Collection, DocumentStore, Shared
from engine.errors import DocumentError
from engine.remote import servers
from engine.settings import Settings


class DocumentLibrary(Protocol):
    """What of `library.DocumentLibrary` this module uses (named so, not imported: the library
    imports this module)."""

    folder: Path
    settings: Settings
    chroma_pool: dict[tuple[Any, ...], Any]

    def embedder_for(self, model_id: str) -> TextEmbedder: ...


log = logging.getLogger(__name__)

LAYOUT = 1  # of the passages and metadata on the server; a subscriber refuses another
_KEY = "hearth:"  # prefix of our keys in the server collection's metadata
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")


def remote_name_for(name: str) -> str:
    """A Chroma collection name (3-512 of [A-Za-z0-9._-], alphanumeric at both ends) for a
    Hearth collection name; DocumentError when none can be made."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("._-").replace("..", ".")
    if not _NAME.match(slug):
        raise DocumentError(
            f"“{name}” cannot be a collection name on a Chroma server (3 to 512 letters, "
            "digits, dots, dashes or underscores). Give one with --as."
        )
    return slug


# -- publishing ------------------------------------------------------------------------------


def publish(
    library: DocumentLibrary, name: str, server_url: str, remote_name: str | None = None
) -> Generator[IndexProgress | Published, None, None]:
    """Push the local collection `name` to `server_url` as `remote_name` (default: its own
    name made fit for Chroma). Yields progress, then one Published. Close it to stop; what was
    sent stays (publishing again finishes the job). The local collection is only read."""
    t0 = time.monotonic()
    settings = library.settings
    store = DocumentStore(library.folder / "documents.sqlite")
    try:
        col = store.collection(name)
        if col.shared is not None:
            raise DocumentError(
                f"“{name}” is itself shared from {col.shared.server}; publish it from the "
                "Hearth that indexed it."
            )
        total = store.counts(col)["chunks"]
        if total == 0:
            raise DocumentError(f"“{name}” has no indexed passages to publish; sync it first.")
        target = remote_name or remote_name_for(name)
        if not _NAME.match(target):
            raise DocumentError(f"“{target}” is not a name a Chroma server accepts.")
        dims = library.embedder_for(col.embedder).dimensions
        meta = {
            f"{_KEY}publisher": _publisher(library, store, col),
            f"{_KEY}layout": LAYOUT,
            f"{_KEY}embedder": col.embedder,
            f"{_KEY}dimensions": dims,
            f"{_KEY}chunk_tokens": col.chunk_tokens,
            f"{_KEY}chunk_overlap": col.chunk_overlap,
        }
        with open_server(settings, server_url) as remote:
            rcol = _get_or_create(remote, target, meta)
            _check(remote, rcol.metadata, col.embedder, dims, target)
            batch = max(1, min(remote.call("asking its batch size", _max_batch(remote)), 1000))
            before = set(_all_ids(remote, rcol, batch))
            theirs = (rcol.metadata or {}).get(f"{_KEY}publisher")
            if before and theirs != meta[f"{_KEY}publisher"]:
                # Its ids are another collection's chunk ids: publishing would replace them.
                raise DocumentError(
                    f"“{target}” on {remote.server.key} was published from another collection "
                    "(another computer, or another collection here); publishing would replace "
                    "its passages. Publish under another name with --as."
                )
            sent: set[str] = set()
            after = 0
            while True:
                rows = _passages(store, col, after, batch)
                if not rows:
                    break
                after = rows[-1][0]
                ids = [str(r[0]) for r in rows]
                embeddings = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
                texts = [r[2] for r in rows]
                metas = [r[3] for r in rows]
                remote.call(
                    "publishing passages",
                    rcol.upsert,
                    ids=ids,
                    embeddings=embeddings,
                    documents=texts,
                    metadatas=metas,
                    writing=True,
                )
                sent.update(ids)
                rate = len(sent) / max(time.monotonic() - t0, 1e-6)
                eta = (total - len(sent)) / rate if rate else None
                yield IndexProgress("publishing", len(sent), total, len(sent), rate, eta)
            gone = sorted(before - sent)
            for start in range(0, len(gone), batch):
                part = gone[start : start + batch]
                remote.call("removing passages", rcol.delete, ids=part, writing=True)
            meta[f"{_KEY}published"] = time.time()
            meta[f"{_KEY}passages"] = len(sent)
            remote.call(
                "recording what was published", lambda: rcol.modify(metadata=meta), writing=True
            )
            server = remote.server.url
        yield Published(name, server, target, len(sent), len(gone), time.monotonic() - t0)
    finally:
        store.close()


def _publisher(library: DocumentLibrary, store: DocumentStore, col: Collection) -> str:
    """Who publishes: the same for this collection in this data folder on this computer,
    different for any other, and saying nothing about either (a hash)."""
    created = store.db.execute("SELECT created FROM collections WHERE id = ?", (col.id,))
    seed = f"{uuid.getnode()}|{Path(library.folder).resolve()}|{col.id}|{created.fetchone()[0]}"
    return hashlib.sha256(seed.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _get_or_create(remote: ChromaServer, name: str, meta: dict[str, Any]) -> Any:
    from chromadb.errors import NotFoundError

    client = remote.client

    def get_or_create() -> Any:
        try:
            return client.get_collection(name, embedding_function=None)
        except NotFoundError:
            return client.create_collection(
                name,
                metadata=meta,
                configuration={"hnsw": {"space": "cosine"}},
                embedding_function=None,
            )

    return remote.call("opening the collection", get_or_create, writing=True)


def _max_batch(remote: ChromaServer) -> Any:
    return lambda: int(remote.client.get_max_batch_size())


def _all_ids(remote: ChromaServer, rcol: Any, batch: int) -> list[str]:
    out: list[str] = []
    while True:
        offset = len(out)
        got = remote.call("listing passages", rcol.get, include=[], limit=batch, offset=offset)
        out.extend(got["ids"])
        if len(got["ids"]) < batch:
            return out


def _passages(
    store: DocumentStore, col: Collection, after: int, limit: int
) -> list[tuple[int, bytes, str, dict[str, Any]]]:
    rows = store.db.execute(
        "SELECT c.id, c.embedding, c.text, c.seq, c.heading, c.page, c.char_start, c.char_end, "
        "c.line_start, c.line_end, c.ocr, d.path, d.sha256, d.kind, d.pages, d.size "
        "FROM chunks c JOIN documents d ON d.id = c.document_id "
        "WHERE c.collection_id = ? AND c.id > ? ORDER BY c.id LIMIT ?",
        (col.id, after, limit),
    ).fetchall()
    out = []
    for r in rows:
        path = r[11]  # as our store keeps it (a non-UTF-8 name in its hex form): it travels
        meta = {
            "path": path,
            "file": path.replace("\\", "/").rsplit("/", 1)[-1],
            "seq": r[3],
            "heading": r[4],
            "page": r[5],
            "char_start": r[6],
            "char_end": r[7],
            "line_start": r[8],
            "line_end": r[9],
            "ocr": bool(r[10]),
            "sha256": r[12],
            "kind": r[13],
            "pages": r[14],
            "size": r[15],
        }
        # Chroma's metadata takes no nulls: an absent key is "none".
        out.append((r[0], r[1], r[2], {k: v for k, v in meta.items() if v is not None}))
    return out


def _check(remote: ChromaServer, meta: Any, embedder: str, dims: int, name: str) -> None:
    """Refuse a server collection Hearth did not write, or wrote with another embedder."""
    meta = meta or {}
    key = remote.server.key
    if meta.get(f"{_KEY}layout") is None:
        raise DocumentError(
            f"The collection “{name}” on {key} was not published by Hearth (it records no "
            "embedder), so Hearth cannot search it with the right one."
        )
    if meta.get(f"{_KEY}layout") != LAYOUT:
        raise DocumentError(
            f"The collection “{name}” on {key} was published by another version of Hearth "
            f"(layout {meta.get(f'{_KEY}layout')}, this one reads {LAYOUT}). Publish it again."
        )
    theirs, their_dims = meta.get(f"{_KEY}embedder"), meta.get(f"{_KEY}dimensions")
    if theirs != embedder or their_dims != dims:
        raise DocumentError(
            f"The collection “{name}” on {key} was embedded with {theirs} ({their_dims} "
            f"dimensions), not {embedder} ({dims}): its vectors and the question's would not "
            "be comparable. Publish under another name, or attach it again."
        )


# -- subscribing -----------------------------------------------------------------------------


def attach(
    library: DocumentLibrary, server_url: str, remote_name: str, local_name: str | None = None
) -> Generator[IndexProgress | IndexDone, None, None]:
    """Register the server collection `remote_name` here as `local_name` (default: the same
    name) and download its passages. Yields progress, then one IndexDone. All or nothing: on
    any failure no local collection is left behind."""
    settings = library.settings
    server = servers.parse(server_url)
    with open_server(settings, server.url) as remote:
        rcol = remote.call(
            "opening the collection",
            remote.client.get_collection,
            remote_name,
            embedding_function=None,
        )
        meta = rcol.metadata or {}
        embedder = str(meta.get(f"{_KEY}embedder") or "")
        try:
            dims = library.embedder_for(embedder).dimensions
        except ValueError:
            if not embedder:
                _check(remote, meta, embedder, 0, remote_name)
            raise DocumentError(
                f"The collection “{remote_name}” on {server.key} was embedded with "
                f"“{embedder}”, which this Hearth does not have, so it cannot ask it questions."
            ) from None
        _check(remote, meta, embedder, dims, remote_name)
    store = DocumentStore(library.folder / "documents.sqlite")
    try:
        col = shared_cache.attach(
            store,
            local_name or remote_name,
            embedder,
            int(meta.get(f"{_KEY}chunk_tokens") or 0),
            int(meta.get(f"{_KEY}chunk_overlap") or 0),
            Shared(server.url, remote_name, dims, None),
        )
        done = False
        try:
            yield from refresh(library, store, col)
            done = True
        finally:
            if not done:
                store.delete_collection(col)
    finally:
        store.close()


def refresh(
    library: DocumentLibrary, store: DocumentStore, col: Collection
) -> Generator[IndexProgress | IndexDone, None, None]:
    """Download the shared collection's passages again into the local cache (what `sync`
    does for it). The old cache stays until the new one is complete."""
    assert col.shared is not None
    t0 = time.monotonic()
    shared = col.shared
    passages: list[Passage] = []
    with open_server(library.settings, shared.server, library.chroma_pool) as remote:
        rcol = remote_collection(remote, col)
        total = remote.call("counting passages", rcol.count)
        batch = max(1, min(remote.call("asking its batch size", _max_batch(remote)), 1000))
        seen: set[str] = set()
        while True:
            offset = len(passages)
            got = remote.call(
                "downloading passages",
                rcol.get,
                include=["documents", "metadatas"],
                limit=batch,
                offset=offset,
            )
            for rid, text, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True):
                if rid not in seen:
                    seen.add(rid)
                    passages.append(Passage(str(rid), str(text or ""), dict(meta or {})))
            rate = len(passages) / max(time.monotonic() - t0, 1e-6)
            eta = max(total - len(passages), 0) / rate if rate else None
            yield IndexProgress("downloading", len(passages), total, len(passages), rate, eta)
            if len(got["ids"]) < batch:
                break
    counts = shared_cache.replace(store, col, passages)
    yield IndexDone(
        col.name,
        scanned=counts["documents"],
        unchanged=0,
        indexed=counts["documents"],
        skipped=0,
        failed=0,
        removed=max(counts["before"] - counts["documents"], 0),
        chunks_added=counts["passages"],
        seconds=time.monotonic() - t0,
        counts=store.counts(col),
        notes=[f"Passages downloaded from {shared.server} ({shared.remote_name})."],
    )


def remote_collection(remote: ChromaServer, col: Collection) -> Any:
    shared = col.shared
    assert shared is not None
    rcol = remote.call(
        "opening the collection",
        remote.client.get_collection,
        shared.remote_name,
        embedding_function=None,
    )
    _check(remote, rcol.metadata, col.embedder, shared.dimensions, shared.remote_name)
    return rcol
