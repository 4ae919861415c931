"""The documents service: collections, syncing, search. What app/ hands to the CLI and the UI.

Every call opens its own SQLite connection, so a sync running in a worker thread and a search
from another thread never share one. The embedder (torch) loads on first use, not at start.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from filelock import Timeout

from engine.documents import indexer, retrieval
from engine.documents.embedder import MAX_SEQ_TOKENS, TextEmbedder, for_model
from engine.documents.events import IndexDone, IndexProgress, Published
from engine.documents.indexer import IndexOptions
from engine.documents.store import Collection, DocumentRow, DocumentStore
from engine.documents.vectors import VectorIndex
from engine.errors import DocumentError, EmbeddingInputTooLong

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    sources: tuple[str, ...]
    embedder: str
    counts: dict[str, int]
    embedder_next: str | None = None  # its passages are being embedded again with this one
    shared: str | None = None  # "<server URL> <name there>" for a collection on a Chroma server

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sources": list(self.sources),
            "embedder": self.embedder,
            "embedder_next": self.embedder_next,
            "shared": self.shared,
            **self.counts,
        }


@dataclass(frozen=True)
class SearchResult:
    hits: list[retrieval.Hit]
    mode: str
    notes: list[str] = field(default_factory=list)


class Documents(Protocol):
    """The documents service as the window, the CLI and the API use it: `DocumentLibrary` in
    this process, or `IsolatedLibrary` with the heavy work in child processes."""

    folder: Path
    settings: Any

    def create(self, name: str, paths: list[str] | None = None) -> CollectionInfo: ...
    def add(self, name: str, paths: list[str]) -> CollectionInfo: ...
    def remove_paths(self, name: str, paths: list[str]) -> CollectionInfo: ...
    def delete(self, name: str) -> None: ...
    def collections(self) -> list[CollectionInfo]: ...
    def info(self, name: str) -> CollectionInfo: ...
    def documents(self, name: str) -> list[DocumentRow]: ...
    def set_embedder(self, name: str, model_id: str) -> CollectionInfo: ...
    def sync(self, name: str) -> Generator[IndexProgress | IndexDone, None, None]: ...
    def search(
        self,
        name: str,
        query: str,
        *,
        top_k: int | None = None,
        min_score: float | None = None,
        mode: str = "hybrid",
    ) -> SearchResult: ...
    def embed(self, texts: list[str]) -> tuple[Any, list[int]]: ...
    def close(self) -> None: ...


class DocumentLibrary:
    """The documents service, in this process."""

    def __init__(self, folder: Path, settings: Any, embedder: TextEmbedder | None = None) -> None:
        self.folder = folder
        self.settings = settings
        self._embedder = embedder  # given: new collections use it (tests, benches)
        self._embedders: dict[str, TextEmbedder] = {}
        if embedder is not None:
            self._embedders[embedder.model_id] = embedder
        self.lock = indexer.writer_lock(folder)
        self._vector_client: dict[str, Any] = {}  # chromadb's client, kept open between calls
        # Open connections to Chroma servers of shared collections (documents/chroma_remote.py)
        self.chroma_pool: dict[tuple[Any, ...], Any] = {}

    @property
    def embedder(self) -> TextEmbedder:
        """The bundled all-MiniLM-L6-v2 (what the API's embeddings endpoint serves), or the
        embedder this library was given."""
        if self._embedder is None:
            self._embedder = self.embedder_for(_default_embedder_id())
        return self._embedder

    def embedder_for(self, model_id: str) -> TextEmbedder:
        """The embedder a collection records, loaded once per library."""
        if model_id not in self._embedders:
            self._embedders[model_id] = for_model(model_id)
        return self._embedders[model_id]

    @contextlib.contextmanager
    def _open(self) -> Iterator[tuple[DocumentStore, VectorIndex]]:
        store = DocumentStore(self.folder / "documents.sqlite")
        vectors = VectorIndex(self.folder / "vectors", store, self._vector_client)
        try:
            yield store, vectors
        finally:
            vectors.close()
            store.close()

    # -- collections -------------------------------------------------------------------------

    def create(self, name: str, paths: list[str] | None = None) -> CollectionInfo:
        with self._open() as (store, _):
            col = store.create_collection(
                name,
                self._embedder.model_id
                if self._embedder
                else self.settings.get("documents.embedder"),
                self.settings.get("documents.chunk_tokens"),
                self.settings.get("documents.chunk_overlap"),
            )
            if paths:
                store.add_sources(col, _normalise(paths))
            return self._info(store, store.collection(name))

    def add(self, name: str, paths: list[str]) -> CollectionInfo:
        with self._open() as (store, _):
            col = _local(store.collection(name), "add folders or files to it")
            col = store.add_sources(col, _normalise(paths))
            return self._info(store, col)

    def remove_paths(self, name: str, paths: list[str]) -> CollectionInfo:
        """Stop indexing these folders or files (their chunks go at the next sync)."""
        with self._open() as (store, _):
            col = _local(store.collection(name), "remove folders or files from it")
            unknown = [p for p in _normalise(paths) if p not in col.sources]
            if unknown:
                raise DocumentError(
                    f"“{unknown[0]}” is not one of the folders or files of “{name}”."
                )
            col = store.remove_sources(col, _normalise(paths))
            return self._info(store, col)

    def delete(self, name: str) -> None:
        with self._write_lock(), self._open() as (store, vectors):
            col = store.collection(name)
            vectors.drop(col)
            store.delete_collection(col)

    def collections(self) -> list[CollectionInfo]:
        with self._open() as (store, _):
            return [self._info(store, c) for c in store.collections()]

    def info(self, name: str) -> CollectionInfo:
        with self._open() as (store, _):
            return self._info(store, store.collection(name))

    def documents(self, name: str) -> list[DocumentRow]:
        with self._open() as (store, _):
            rows = store.documents(store.collection(name))
            return sorted(rows.values(), key=lambda r: r.path)

    @staticmethod
    def _info(store: DocumentStore, col: Collection) -> CollectionInfo:
        shared = f"{col.shared.server} {col.shared.remote_name}" if col.shared else None
        return CollectionInfo(
            col.name, col.sources, col.embedder, store.counts(col), col.embedder_next, shared
        )

    def set_embedder(self, name: str, model_id: str) -> CollectionInfo:
        """Embed the collection's passages again with `model_id`, at its next sync (with
        progress; searches use the old vectors until every passage has a new one)."""
        from engine import models

        if model_id not in {m.id for m in models.BUNDLED_EMBEDDERS}:
            known = ", ".join(m.id for m in models.BUNDLED_EMBEDDERS)
            raise DocumentError(f"“{model_id}” is not an embedder Hearth has ({known}).")
        with self._open() as (store, _):
            col = _local(store.collection(name), "change its embedder")
            col = store.set_embedder_next(col, model_id)
            return self._info(store, col)

    # -- indexing ------------------------------------------------------------------------------

    def options(self, col: Collection) -> IndexOptions:
        return IndexOptions(
            chunk_tokens=col.chunk_tokens,
            chunk_overlap=col.chunk_overlap,
            parse_timeout_s=self.settings.get("documents.parse_timeout_s"),
            parse_memory_mb=self.settings.get("documents.parse_memory_mb"),
            max_file_bytes=self.settings.get("documents.max_file_mb") * 2**20,
            ocr=self.settings.get("documents.ocr"),
        )

    def sync(self, name: str) -> Generator[IndexProgress | IndexDone, None, None]:
        """Index what changed; a generator of progress, then one IndexDone. Close it to
        cancel. Raises IndexBusy when another process is writing."""
        with self._open() as (store, vectors):
            col = store.collection(name)
            if col.shared is not None:  # its cache is downloaded again from its server
                from engine.documents import shared

                yield from shared.refresh(self, store, col)
                return
            reembedded, t0 = 0, time.monotonic()
            if col.embedder_next:
                nxt = self.embedder_for(col.embedder_next)
                for progress in indexer.reembed(store, vectors, nxt, self.lock, col):
                    reembedded = progress.files_done
                    yield progress
                col = store.collection(name)
            spent = time.monotonic() - t0
            for event in indexer.sync(
                store, vectors, self.embedder_for(col.embedder), self.lock, col, self.options(col)
            ):
                if isinstance(event, IndexDone) and reembedded:
                    event = dataclasses.replace(
                        event, reembedded=reembedded, seconds=event.seconds + spent
                    )
                yield event

    @contextlib.contextmanager
    def _write_lock(self) -> Iterator[None]:
        from engine.errors import IndexBusy

        try:
            self.lock.acquire(timeout=10)
        except Timeout:
            raise IndexBusy(
                "Another Hearth window or command is indexing documents; try again when it is done."
            ) from None
        try:
            yield
        finally:
            self.lock.release()

    # -- search ----------------------------------------------------------------------------------

    def search(
        self,
        name: str,
        query: str,
        *,
        top_k: int | None = None,
        min_score: float | None = None,
        mode: str = "hybrid",
    ) -> SearchResult:
        """Passages for `query`, best first; needs no chat model."""
        top_k = top_k or self.settings.get("documents.top_k")
        min_score = self.settings.get("documents.min_score") if min_score is None else min_score
        notes: list[str] = []
        with self._open() as (store, vectors):
            col = store.collection(name)
            if col.shared is not None:  # vectors asked of its server, words matched here
                from engine.documents import shared_search

                hits = shared_search.search(
                    self,
                    store,
                    col,
                    query,
                    top_k=top_k,
                    min_score=min_score,
                    mode=mode,
                    notes=notes,
                )
                return SearchResult(hits, mode, notes)
            self._repair_vectors(store, vectors, col, notes)
            query_vector = self.embedder_for(col.embedder).embed_query(query)
            vector_hits: list[tuple[int, float]] = []
            if mode != "bm25":
                k = max(top_k * 5, 30)
                try:
                    vector_hits = vectors.query(col, query_vector, k)
                except Exception as exc:
                    log.warning("vector search failed: %s", exc)
                    if self._rebuild_vectors(vectors, col, f"search failed: {exc}"):
                        notes.append("The vector index was damaged and has been rebuilt.")
                        vector_hits = vectors.query(col, query_vector, k)
                    else:  # a sync holds the lock and will repair it: use words meanwhile
                        notes.append(
                            "The vector index is being rebuilt; these results come "
                            "from word matching only."
                        )
            hits = retrieval.search(
                store,
                col,
                query_vector,
                vector_hits,
                query,
                top_k=top_k,
                min_score=min_score,
                mode=mode,
            )
            return SearchResult(hits, mode, notes)

    def embed(self, texts: list[str]) -> tuple[Any, list[int]]:
        """Unit vectors of `texts` from the embedder the collections use (a numpy array, one
        row per text) and the word pieces each text took. A text longer than the embedder
        reads raises EmbeddingInputTooLong before anything is computed: cutting it silently
        would give a vector for words the caller did not send."""
        counts = [self.embedder.count_tokens(t) for t in texts]
        for i, n in enumerate(counts):
            if n > MAX_SEQ_TOKENS:
                raise EmbeddingInputTooLong(
                    f"Input {i} is {n} word pieces long; the embedder reads at most "
                    f"{MAX_SEQ_TOKENS}. Split it into shorter passages."
                )
        return self.embedder.embed(texts), counts

    def publish(
        self, name: str, server_url: str, remote_name: str | None = None
    ) -> Generator[IndexProgress | Published, None, None]:
        """Push the collection's passages and vectors to a Chroma server (documents/shared.py);
        progress, then one Published."""
        from engine.documents import shared

        return shared.publish(self, name, server_url, remote_name)

    def attach(
        self, server_url: str, remote_name: str, local_name: str | None = None
    ) -> Generator[IndexProgress | IndexDone, None, None]:
        """Use a collection published on a Chroma server as `local_name`; progress of its
        download, then one IndexDone."""
        from engine.documents import shared

        return shared.attach(self, server_url, remote_name, local_name)

    def close(self) -> None:
        """Close the connections to Chroma servers kept open; each call opens and closes its
        own stores."""
        while self.chroma_pool:
            self.chroma_pool.popitem()[1].close()

    def _rebuild_vectors(self, vectors: VectorIndex, col: Collection, why: str) -> bool:
        try:
            self.lock.acquire(timeout=0)
        except Timeout:
            return False
        try:
            vectors.rebuild(col, why)
        finally:
            self.lock.release()
        return True

    def _repair_vectors(
        self, store: DocumentStore, vectors: VectorIndex, col: Collection, notes: list[str]
    ) -> None:
        """If nobody is writing, make chromadb level with SQLite first (it may have been
        deleted, damaged, or left behind by a killed sync)."""
        try:
            self.lock.acquire(timeout=0)
        except Timeout:
            return  # a sync is running and will do it
        try:
            vectors.client(may_reset=True)  # a missing or foreign folder is refilled here
            if (
                vectors.rebuilt
                or store.pending_deletions(col)
                or store.pending_vectors(col, limit=1)
            ):
                vectors.sync(col, verify=False)
            notes.extend(f"The vector index was rebuilt ({why})." for why in vectors.rebuilt)
        finally:
            self.lock.release()


def _local(col: Collection, what: str) -> Collection:
    if col.shared is not None:
        raise DocumentError(
            f"“{col.name}” is shared from the Chroma server {col.shared.server}; its files are "
            f"indexed where it was published, so Hearth cannot {what} here."
        )
    return col


def _default_embedder_id() -> str:
    from engine import models

    return models.BUNDLED_EMBEDDER.id


def _normalise(paths: list[str]) -> list[str]:
    out = []
    for p in paths:
        absolute = os.path.abspath(os.path.expanduser(p))
        if not os.path.lexists(absolute):
            raise DocumentError(f"“{p}” does not exist.")
        out.append(absolute)
    return out
