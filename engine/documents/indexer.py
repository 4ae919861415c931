"""Bring a collection's index level with its files: a generator of progress events.

One writer at a time (a file lock next to the database). The walk decides what changed: a file
with the same size and mtime is not opened; a changed one is re-hashed, and only re-read when
its content differs; a vanished one is forgotten. Reading (hash + parse in the worker process)
runs one file ahead in a thread while this thread chunks, embeds and stores, so both cores work.
Each file is committed in one transaction, so a kill at any point loses at most the files in
flight and the next sync picks them up, without duplicates.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout

from engine import files
from engine.documents import language
from engine.documents.chunking import chunk_text
from engine.documents.embedder import TextEmbedder
from engine.documents.events import IndexDone, IndexProgress
from engine.documents.parsing import FileParser, ParseResult
from engine.documents.store import Collection, DocumentRow, DocumentStore, NewChunk
from engine.documents.vectors import VectorIndex
from engine.documents.walk import Found, walk
from engine.errors import IndexBusy
from engine.files import sha256_file

log = logging.getLogger(__name__)

EMBED_BATCH_CHUNKS = 128


@dataclass(frozen=True)
class IndexOptions:
    chunk_tokens: int = 200
    chunk_overlap: int = 40
    parse_timeout_s: float = 60.0
    parse_memory_mb: int = 2048
    max_file_bytes: int = 256 * 2**20
    ocr: bool = True


@dataclass(frozen=True)
class _Note:
    """How far the reader is in a long file (OCR), passed on as progress."""

    path: str
    detail: str


@dataclass
class _Read:
    found: Found
    sha256: str | None = None
    result: ParseResult | None = None
    unchanged_content: bool = False


def _missed_ocr(row: DocumentRow, options: IndexOptions) -> bool:
    """A PDF read while OCR was off or not available (every scanned PDF, before Hearth had OCR)
    is read again once OCR is on, though its bytes did not change."""
    reason = row.reason or ""
    return options.ocr and ("OCR is off" in reason or "OCR not available" in reason)


def writer_lock(folder: Path) -> FileLock:
    folder.mkdir(parents=True, exist_ok=True)
    return FileLock(str(folder / "writer.lock"))


def sync(
    store: DocumentStore,
    vectors: VectorIndex,
    embedder: TextEmbedder,
    lock: FileLock,
    collection: Collection,
    options: IndexOptions,
) -> Iterator[IndexProgress | IndexDone]:
    """Index what changed in `collection`. Close the generator to cancel: files already
    committed stay indexed, the rest is picked up next time."""
    with _writing(lock):
        yield from _sync(store, vectors, embedder, collection, options)


def reembed(
    store: DocumentStore,
    vectors: VectorIndex,
    embedder: TextEmbedder,
    lock: FileLock,
    collection: Collection,
) -> Iterator[IndexProgress]:
    """Give every passage of `collection` a vector from `embedder` (its `embedder_next`),
    then switch to them and rebuild the vector index. Each batch is committed, so a cancel or
    a kill resumes where it stopped; searches use the old vectors until the switch."""
    with _writing(lock):
        assert collection.embedder_next == embedder.model_id
        t0 = time.monotonic()
        done0, total = store.reembed_progress(collection)
        done = done0
        while batch := store.to_reembed(collection, EMBED_BATCH_CHUNKS):
            inputs = []
            for _, text, heading, path, tokens in batch:
                inputs.append(embedder.passage_input(_context(path, heading), text, tokens))
            store.put_next_embeddings([b[0] for b in batch], embedder.embed(inputs))
            done += len(batch)
            rate = (done - done0) / max(1e-6, time.monotonic() - t0)
            eta = (total - done) / rate if rate > 0 else None
            yield IndexProgress("re-embedding", done, total, done, rate, eta)
        yield IndexProgress("vectors", total, total, total, 0.0, None)
        # Every chunk is now out of the vector index in SQLite's eyes. The old vectors go and
        # the sync adds the new ones; after a kill right here, the next sync's count check
        # finds the mismatch and refills it the same way.
        collection = store.switch_embedder(collection)
        vectors.drop(collection)
        vectors.sync(collection)


def _context(path: str, heading: str | None) -> str:
    """The "file › heading" line embedded before a passage."""
    name = files.readable_name(Path(path).name)
    return f"{name} › {heading}" if heading else name


@contextlib.contextmanager
def _writing(lock: FileLock) -> Iterator[None]:
    """This process is the one writer, or IndexBusy."""
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise IndexBusy(
            "Another Hearth window or command is indexing documents right now; "
            "try again when it is done."
        ) from None
    try:
        yield
    finally:
        lock.release()


def _sync(
    store: DocumentStore,
    vectors: VectorIndex,
    embedder: TextEmbedder,
    collection: Collection,
    options: IndexOptions,
) -> Iterator[IndexProgress | IndexDone]:
    t0 = time.monotonic()
    notes: list[str] = []
    vectors.sync(collection)  # repair what a killed run left between SQLite and chromadb
    existing = store.documents(collection)
    yield IndexProgress("scanning", 0, 0, 0, 0.0, None)
    seen: set[str] = set()
    todo: list[tuple[Found, DocumentRow | None]] = []
    skipped = failed = unchanged = 0
    last_yield = time.monotonic()
    for found in walk(collection.sources, options.max_file_bytes):
        if found.path in seen:
            continue
        seen.add(found.path)
        row = existing.get(found.path)
        if found.status is not None:
            if row is None or (row.status, row.reason, row.size, row.mtime_ns) != (
                found.status,
                found.reason,
                found.size,
                found.mtime_ns,
            ):
                store.record_status(
                    collection,
                    found.path,
                    found.status,
                    found.reason,
                    kind=found.kind,
                    size=found.size,
                    mtime_ns=found.mtime_ns,
                )
            skipped += found.status == "skipped"
            failed += found.status == "failed"
        elif (
            row is not None
            and row.size == found.size
            and row.mtime_ns == found.mtime_ns
            and not _missed_ocr(row, options)
        ):
            unchanged += 1
        else:
            todo.append((found, row))
        if time.monotonic() - last_yield > 0.2:
            last_yield = time.monotonic()
            yield IndexProgress("scanning", 0, len(seen), 0, 0.0, None, found.path)
    removed = [p for p in existing if p not in seen]
    if removed:
        store.forget(collection, removed)

    counts = {"indexed": 0, "skipped": skipped, "failed": failed, "chunks": 0}
    total_bytes = sum(f.size or 0 for f, _ in todo) or 1
    done_bytes = 0
    t_read = time.monotonic()
    reader = _Reader(todo, options)
    pending: list[tuple[_Read, list[NewChunk]]] = []
    i = -1

    def storing(
        batch: list[tuple[_Read, list[NewChunk]]], files_done: int
    ) -> Iterator[IndexProgress]:
        """Store `batch`, with progress for each slice of a long batch embedded."""
        for embedded, total, path in _store_each(store, collection, embedder, batch, counts):
            chunks = counts["chunks"] + embedded
            yield IndexProgress(
                "reading",
                files_done,
                len(todo),
                chunks,
                chunks / max(1e-6, time.monotonic() - t_read),
                None,
                path,
                f"embedding: {embedded:,} of {total:,} passages",
            )

    try:
        for item in reader:
            if isinstance(item, _Note):
                if pending:  # the reader is in a long file: store what is ready meanwhile
                    yield from storing(pending, i + 1)
                    pending = []
                yield IndexProgress(
                    "reading",
                    i + 1,
                    len(todo),
                    counts["chunks"],
                    counts["chunks"] / max(1e-6, time.monotonic() - t_read),
                    None,
                    item.path,
                    item.detail,
                )
                continue
            i += 1
            done_bytes += item.found.size or 0
            ready = _handle(store, collection, item, embedder, options, counts, notes)
            if ready is not None:
                pending.append(ready)
            if pending and (sum(len(c) for _, c in pending) >= EMBED_BATCH_CHUNKS or reader.idle()):
                yield from storing(pending, i + 1)
                pending = []
            elapsed = max(1e-6, time.monotonic() - t_read)
            rate = done_bytes / elapsed
            eta = (total_bytes - done_bytes) / rate if rate > 0 and i > 0 else None
            yield IndexProgress(
                "reading",
                i + 1,
                len(todo),
                counts["chunks"],
                counts["chunks"] / elapsed,
                eta,
                item.found.path,
            )
        if pending:
            yield from storing(pending, i + 1)
            pending = []
    finally:
        reader.close()

    yield IndexProgress("vectors", len(todo), len(todo), counts["chunks"], 0.0, None)
    vectors.sync(collection)
    notes.extend(f"vector index rebuilt: {why}" for why in vectors.rebuilt)
    yield IndexDone(
        collection.name,
        len(seen),
        unchanged,
        counts["indexed"],
        counts["skipped"],
        counts["failed"],
        len(removed),
        counts["chunks"],
        time.monotonic() - t0,
        store.counts(collection),
        notes,
    )


def _handle(
    store: DocumentStore,
    collection: Collection,
    item: _Read,
    embedder: TextEmbedder,
    options: IndexOptions,
    counts: dict[str, int],
    notes: list[str],
) -> tuple[_Read, list[NewChunk]] | None:
    f = item.found
    if item.unchanged_content:  # touched or copied over with the same bytes
        assert f.size is not None and f.mtime_ns is not None
        store.touch(collection, f.path, f.size, f.mtime_ns)
        return None
    result = item.result
    assert result is not None
    if result.status != "ok":
        _give_up(store, collection, item, result.status, result.reason, counts)
        return None
    try:
        chunks = chunk_text(
            result.text,
            result.pages,
            result.headings,
            embedder.tokenizer,
            max_tokens=options.chunk_tokens,
            overlap=options.chunk_overlap,
            ocr_pages=set(result.ocr_pages),
        )
    except Exception as exc:  # our bug must not stop the other files
        log.exception("chunking failed for %s", f.path)
        why = f"could not be split into passages: {type(exc).__name__}"
        _give_up(store, collection, item, "failed", why, counts)
        return None
    if not chunks:
        _give_up(store, collection, item, "skipped", "no text in the file", counts)
        return None
    return item, chunks


def _give_up(
    store: DocumentStore,
    collection: Collection,
    item: _Read,
    status: str,
    reason: str | None,
    counts: dict[str, int],
) -> None:
    """The file ends skipped or failed, with its reason; the sync goes on."""
    f = item.found
    store.record_status(
        collection,
        f.path,
        status,
        reason,
        kind=f.kind,
        size=f.size,
        mtime_ns=f.mtime_ns,
        sha256=item.sha256,
    )
    counts[status] += 1


def _store_each(
    store: DocumentStore,
    collection: Collection,
    embedder: TextEmbedder,
    pending: list[tuple[_Read, list[NewChunk]]],
    counts: dict[str, int],
) -> Iterator[tuple[int, int, str]]:
    """Store a batch; when it fails for something in the data, store its files one by one so
    that only the file at fault fails (with the reason) and the others index. A full disk or a
    database error is not the file's fault: it stops the sync, and nothing is half-written.
    Yields (passages embedded, passages in the batch, file) as `_store_batch` does."""
    try:
        yield from _store_batch(store, collection, embedder, pending, counts)
        return
    except (OSError, sqlite3.Error):
        raise
    except Exception as exc:
        if len(pending) > 1:
            log.warning("a batch could not be indexed (%s); trying its files one by one", exc)
            for one in pending:
                yield from _store_each(store, collection, embedder, [one], counts)
            return
        item = pending[0][0]
        log.exception("indexing %s failed", item.found.path)
        why = f"could not be indexed ({type(exc).__name__}: {str(exc)[:200]})"
        _give_up(store, collection, item, "failed", why, counts)


def _store_batch(
    store: DocumentStore,
    collection: Collection,
    embedder: TextEmbedder,
    pending: list[tuple[_Read, list[NewChunk]]],
    counts: dict[str, int],
) -> Iterator[tuple[int, int, str]]:
    """Embed the batch's passages EMBED_BATCH_CHUNKS at a time, yielding (passages embedded,
    passages in all, the file being embedded) after each slice when there is more than one (a
    file of 20,000 passages shows progress and holds one slice's word pieces, issue 34), then
    store each file whole: its passages and vectors replace the old ones in one step."""
    inputs, owner = [], []
    for item, chunks in pending:
        for c in chunks:
            context = _context(item.found.path, c.heading)
            inputs.append(embedder.passage_input(context, c.text, c.tokens))
            owner.append(item.found.path)
    parts = []
    for at in range(0, len(inputs), EMBED_BATCH_CHUNKS):
        parts.append(embedder.embed(inputs[at : at + EMBED_BATCH_CHUNKS]))
        done = min(len(inputs), at + EMBED_BATCH_CHUNKS)
        if len(inputs) > EMBED_BATCH_CHUNKS:
            yield done, len(inputs), owner[done - 1]
    vectors = np.concatenate(parts)  # every pending file has a passage (`_handle`)
    at = 0
    for item, chunks in pending:
        f, result = item.found, item.result
        assert result is not None and f.size is not None and f.mtime_ns is not None
        notes = [result.note, language.note_for(result.text, embedder.languages)]
        store.replace_chunks(
            collection,
            f.path,
            kind=result.kind or f.kind or "text",
            size=f.size,
            mtime_ns=f.mtime_ns,
            sha256=item.sha256 or "",
            reason="; ".join(n for n in notes if n) or None,
            pages=len(result.pages) or None,
            chunks=chunks,
            embeddings=vectors[at : at + len(chunks)],
        )
        at += len(chunks)
        counts["indexed"] += 1
        counts["chunks"] += len(chunks)


class _Reader:
    """Hashes and parses files one step ahead of the consumer, in a thread of its own."""

    def __init__(self, todo: list[tuple[Found, DocumentRow | None]], options: IndexOptions) -> None:
        self._todo = todo
        self._options = options
        self._out: queue.Queue[_Read | _Note | None] = queue.Queue(maxsize=4)
        self._stop = threading.Event()
        self._parser = FileParser(
            timeout_s=options.parse_timeout_s, memory_mb=options.parse_memory_mb, ocr=options.ocr
        )
        self._thread = threading.Thread(target=self._run, name="hearth-doc-reader", daemon=True)
        self._thread.start()

    def __iter__(self) -> Iterator[_Read | _Note]:
        while True:
            item = self._out.get()
            if item is None:
                return
            yield item

    def idle(self) -> bool:
        return self._out.empty()

    def close(self) -> None:
        if self._thread.is_alive():
            self._stop.set()
            self._parser.abort()  # a cancel must not wait for a slow file
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._out.get(timeout=0.05)
        self._thread.join()

    def _put(self, item: _Read | _Note | None) -> bool:
        while not self._stop.is_set():
            try:
                self._out.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        parser = self._parser
        try:
            for found, row in self._todo:
                if self._stop.is_set():
                    return
                if not self._put(self._read(parser, found, row)):
                    return
        finally:
            parser.close()
            self._put(None)

    def _read(self, parser: FileParser, found: Found, row: DocumentRow | None) -> _Read:
        try:
            digest = sha256_file(Path(found.path))
        except OSError as exc:
            why = (
                "permission denied"
                if isinstance(exc, PermissionError)
                else (exc.strerror or str(exc))
            )
            return _Read(found, None, ParseResult("failed", f"could not read: {why}"))
        if (
            row is not None
            and row.sha256 == digest
            and row.status == "indexed"
            and not _missed_ocr(row, self._options)
        ):
            return _Read(found, digest, unchanged_content=True)
        assert found.kind is not None

        def progress(detail: str) -> None:
            # Progress may be dropped (the consumer is busy and a later note will come), a
            # file never: this must not wait on the queue.
            with contextlib.suppress(queue.Full):
                self._out.put_nowait(_Note(found.path, detail))

        return _Read(found, digest, parser.parse(Path(found.path), found.kind, progress))
