"""The vector index: chromadb, derived from our SQLite store and rebuilt from it at will.

chromadb runs embedded (`PersistentClient`), telemetry off, and only ever receives vectors we
computed: every collection is opened with ``embedding_function=None``, so its default embedding
function (which downloads a model) can never run. A marker file records the chromadb version
and our layout; when it is missing or different, or chromadb cannot open or read the folder,
the folder is cleared and refilled from the embeddings kept in SQLite, without asking anyone.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from engine.documents.store import Collection, DocumentStore

log = logging.getLogger(__name__)

LAYOUT = 1
MARKER = "hearth-vectors.json"
ADD_BATCH = 2000


def _chromadb_version() -> str:
    from importlib import metadata

    return metadata.version("chromadb")


class VectorIndex:
    """One chromadb client over `folder`. Writes need the store's writer lock (held by the
    caller); reads do not."""

    def __init__(
        self, folder: Path, store: DocumentStore, shared: dict[str, Any] | None = None
    ) -> None:
        self.folder = folder
        self.store = store
        # An open client kept by the owner across operations: a new client reloads the HNSW
        # index from disk (0.6 s at 100k vectors), an open one answers in milliseconds.
        self._shared = shared if shared is not None else {}
        self._client: Any = self._shared.get("client")
        self.rebuilt: list[str] = []  # why the folder was rebuilt in this session, for logs/UI

    # -- opening -------------------------------------------------------------------------------

    def _marker(self) -> dict[str, Any]:
        return {"chromadb": _chromadb_version(), "layout": LAYOUT}

    def client(self, *, may_reset: bool) -> Any:
        """The open chromadb client. With `may_reset` (writer lock held) a missing, foreign
        or damaged folder is cleared and refilled; without it such a folder raises."""
        problem = self._problem()
        if problem is None and self._client is not None:
            return self._client
        if problem is not None:
            if not may_reset:
                raise RuntimeError(f"vector index unusable: {problem}")
            self._reset(problem)
        try:
            self._client = self._open(write_marker=may_reset)
        except Exception as exc:  # chromadb raises many kinds on a damaged folder
            if not may_reset:
                raise
            self._reset(f"chromadb could not open it ({type(exc).__name__}: {exc})")
            self._client = self._open(write_marker=True)
        self._shared["client"] = self._client
        return self._client

    def _problem(self) -> str | None:
        """Why the folder cannot be trusted as it is, or None. Cheap: a stat and a tiny read."""
        if not self.folder.exists():
            if self.store.db.execute(
                "SELECT 1 FROM chunks WHERE in_vectors = 1 LIMIT 1"
            ).fetchone():
                return "its folder is missing"
            return None  # nothing indexed yet: created on first write
        try:
            found = json.loads((self.folder / MARKER).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            found = None
        if found == self._marker():
            return None
        if isinstance(found, dict):
            return "written by another chromadb version"
        return "missing its marker (new, foreign or damaged)"

    def _open(self, *, write_marker: bool) -> Any:
        import chromadb
        from chromadb.config import Settings

        self.folder.mkdir(parents=True, exist_ok=True)
        client = chromadb.PersistentClient(
            path=str(self.folder), settings=Settings(anonymized_telemetry=False, allow_reset=True)
        )
        marker = self.folder / MARKER
        if write_marker and not marker.exists():
            marker.write_text(json.dumps(self._marker()), encoding="utf-8")
        return client

    def _reset(self, why: str) -> None:
        log.warning("vector index %s: %s; rebuilding it from the document store", self.folder, why)
        self.rebuilt.append(why)
        self.close()
        self._shared.pop("client", None)
        _forget_chroma_system(self.folder)
        if self.folder.exists():
            shutil.rmtree(self.folder, ignore_errors=True)
        self.store.reset_vectors()

    def close(self) -> None:
        # chromadb keeps one system per folder for the whole process; the owner's `shared`
        # dict keeps the client open for the next operation.
        self._client = None

    def _collection(self, collection: Collection, *, may_reset: bool) -> Any:
        client = self.client(may_reset=may_reset)
        name = f"hearth-{collection.id}"
        if may_reset:
            return client.get_or_create_collection(
                name, embedding_function=None, metadata={"hnsw:space": "cosine"}
            )
        return client.get_collection(name, embedding_function=None)

    # -- writing (writer lock held) -------------------------------------------------------------

    def sync(
        self,
        collection: Collection,
        progress: Callable[[int], None] | None = None,
        *,
        verify: bool = True,
    ) -> int:
        """Bring chromadb level with SQLite: drop deleted chunks, add missing ones. Returns
        how many vectors were added. With `verify`, also compare counts and refill on any
        doubt (chromadb's count costs ~0.3 s at 100k vectors: syncs verify, searches not)."""
        try:
            return self._sync(collection, progress, verify)
        except Exception as exc:
            if isinstance(exc, KeyboardInterrupt | GeneratorExit):
                raise
            self._reset(f"writing failed ({type(exc).__name__}: {exc})")
            return self._sync(collection, progress, True)

    def _sync(
        self, collection: Collection, progress: Callable[[int], None] | None, verify: bool
    ) -> int:
        col = self._collection(collection, may_reset=True)
        deletions = self.store.pending_deletions(collection)
        for start in range(0, len(deletions), ADD_BATCH):
            part = deletions[start : start + ADD_BATCH]
            col.delete(ids=[str(i) for i in part])
            self.store.clear_deletions(part)
        if verify and col.count() != self.store.vector_count(collection):
            log.warning(
                "vector index for “%s” holds %d vectors, the store says %d; refilling",
                collection.name,
                col.count(),
                self.store.vector_count(collection),
            )
            self.rebuilt.append(f"count mismatch in “{collection.name}”")
            self._client.delete_collection(f"hearth-{collection.id}")
            self.store.reset_vectors(collection)
            col = self._collection(collection, may_reset=True)
        added = 0
        while True:
            pending = self.store.pending_vectors(collection, ADD_BATCH)
            if not pending:
                return added
            ids = [i for i, _ in pending]
            col.upsert(ids=[str(i) for i in ids], embeddings=np.stack([v for _, v in pending]))
            self.store.mark_in_vectors(ids)
            added += len(ids)
            if progress is not None:
                progress(added)

    def rebuild(self, collection: Collection, why: str) -> None:
        """Throw the folder away and refill it for `collection` (writer lock held)."""
        self._reset(why)
        self.client(may_reset=True)
        self.sync(collection)

    def drop(self, collection: Collection) -> None:
        client = self.client(may_reset=True)
        try:
            client.delete_collection(f"hearth-{collection.id}")
        except Exception:
            log.debug("no vector collection for %s", collection.name)

    # -- reading ----------------------------------------------------------------------------------

    def query(self, collection: Collection, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Chunk ids with cosine similarity, best first."""
        col = self._collection(collection, may_reset=False)
        total = self.store.vector_count(collection)
        if total == 0:
            return []
        res = col.query(
            query_embeddings=[np.asarray(vector, dtype=np.float32)],
            n_results=min(k, total),
            include=["distances"],
        )
        ids = res["ids"][0]
        distances = res["distances"][0]
        return [(int(i), 1.0 - float(d)) for i, d in zip(ids, distances, strict=True)]


def _forget_chroma_system(folder: Path) -> None:
    """Stop and forget chromadb's cached system for `folder` before its files are deleted.
    Without this a half-opened system from a failed open is reused and fails again."""
    from chromadb.api.shared_system_client import SharedSystemClient

    system = SharedSystemClient._identifier_to_system.pop(str(folder), None)
    if system is not None:
        try:
            system.stop()
        except Exception:  # it was broken already; it is gone either way
            log.debug("stopping a broken chromadb system failed", exc_info=True)
