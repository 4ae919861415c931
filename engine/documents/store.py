"""The document store: our SQLite file is the source of truth for collections.

Documents (path, size, mtime, sha256, status, reason), chunks (text, page, heading, character
and line span, embedding) and the full-text index live here. The vector index (chromadb) is
derived from it and can be thrown away: every chunk row carries its embedding, so a rebuild
needs no model. Chunk rows remember whether the vector index has them (`in_vectors`) and
deleted chunk ids wait in `vector_deletions`, so a process killed between our commit and the
vector write is repaired by the next writer, never duplicated.

Schema changes are named migrations applied in order, after a backup copy of the file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.db import immediate, migrate, wal_mode
from engine.errors import CollectionNotFound, DocumentError

log = logging.getLogger(__name__)

STATUSES = ("indexed", "skipped", "failed")

MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "0001_collections_documents_chunks",
        """
        CREATE TABLE collections (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            embedder TEXT NOT NULL,
            chunk_tokens INTEGER NOT NULL,
            chunk_overlap INTEGER NOT NULL,
            created REAL NOT NULL
        );
        CREATE TABLE sources (
            collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
            path TEXT NOT NULL,
            PRIMARY KEY (collection_id, path)
        );
        CREATE TABLE documents (
            id INTEGER PRIMARY KEY,
            collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
            path TEXT NOT NULL,
            kind TEXT,
            size INTEGER,
            mtime_ns INTEGER,
            sha256 TEXT,
            status TEXT NOT NULL CHECK (status IN ('indexed', 'skipped', 'failed')),
            reason TEXT,
            pages INTEGER,
            chunk_count INTEGER NOT NULL DEFAULT 0,
            updated REAL NOT NULL,
            UNIQUE (collection_id, path)
        );
        CREATE TABLE chunks (
            id INTEGER PRIMARY KEY,
            document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            collection_id INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            text TEXT NOT NULL,
            heading TEXT,
            page INTEGER,
            char_start INTEGER NOT NULL,
            char_end INTEGER NOT NULL,
            line_start INTEGER NOT NULL,
            line_end INTEGER NOT NULL,
            tokens INTEGER NOT NULL,
            embedding BLOB NOT NULL,
            in_vectors INTEGER NOT NULL DEFAULT 0,
            UNIQUE (document_id, seq)
        );
        CREATE INDEX chunks_collection ON chunks (collection_id, in_vectors);
        CREATE TABLE vector_deletions (
            chunk_id INTEGER PRIMARY KEY,
            collection_id INTEGER NOT NULL
        );
        CREATE VIRTUAL TABLE chunks_fts USING fts5 (
            text, heading, content='chunks', content_rowid='id',
            tokenize='porter unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
            INSERT INTO chunks_fts (rowid, text, heading) VALUES (new.id, new.text, new.heading);
        END;
        CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
            INSERT INTO chunks_fts (chunks_fts, rowid, text, heading)
                VALUES ('delete', old.id, old.text, old.heading);
            INSERT OR REPLACE INTO vector_deletions (chunk_id, collection_id)
                VALUES (old.id, old.collection_id);
        END;
    """,
    ),
    (
        # Whether a chunk's text was recognised from a page's image (a scanned PDF page) rather
        # than read from its text layer: shown as "OCR" beside its page in sources.
        "0002_chunks_ocr",
        """
        ALTER TABLE chunks ADD COLUMN ocr INTEGER NOT NULL DEFAULT 0;
    """,
    ),
    (
        # A collection moving to another embedder: the new vectors are computed beside the old
        # ones (searches keep working meanwhile, a kill resumes where it stopped) and swapped
        # in one transaction when every chunk has one.
        "0003_embedder_change",
        """
        ALTER TABLE collections ADD COLUMN embedder_next TEXT;
        ALTER TABLE chunks ADD COLUMN embedding_next BLOB;
    """,
    ),
    (
        # A collection whose vectors live on a Chroma server (documents/shared.py). Its chunks
        # here are a cache of the server's passages (text and citation fields, no vector: an
        # empty embedding), each with the server's id; the cache is rebuilt from the server at
        # every sync, so deleting it loses nothing.
        "0004_shared_collections",
        """
        CREATE TABLE shared_collections (
            collection_id INTEGER PRIMARY KEY REFERENCES collections(id) ON DELETE CASCADE,
            server TEXT NOT NULL,
            remote_name TEXT NOT NULL,
            dimensions INTEGER NOT NULL,
            synced REAL
        );
        ALTER TABLE chunks ADD COLUMN remote_id TEXT;
        CREATE INDEX chunks_remote ON chunks (collection_id, remote_id)
            WHERE remote_id IS NOT NULL;
    """,
    ),
)


@dataclass(frozen=True)
class Shared:
    """Where a shared collection lives: a Chroma server's URL and the collection's name there."""

    server: str
    remote_name: str
    dimensions: int
    synced: float | None  # time.time() of the last refresh of the local cache; None for never


@dataclass(frozen=True)
class Collection:
    id: int
    name: str
    embedder: str
    chunk_tokens: int
    chunk_overlap: int
    sources: tuple[str, ...]
    embedder_next: str | None = None  # being re-embedded for this one (see set_embedder_next)
    shared: Shared | None = None  # its vectors are on a Chroma server (documents/shared.py)


@dataclass(frozen=True)
class DocumentRow:
    id: int
    path: str
    kind: str | None
    size: int | None
    mtime_ns: int | None
    sha256: str | None
    status: str
    reason: str | None
    pages: int | None
    chunk_count: int


@dataclass(frozen=True)
class NewChunk:
    """A chunk ready to be stored: text, where it came from, and its embedding."""

    seq: int
    text: str
    heading: str | None
    page: int | None
    char_start: int
    char_end: int
    line_start: int
    line_end: int
    tokens: int
    ocr: bool = False  # recognised from a scanned page's image


@dataclass(frozen=True)
class ChunkRow:
    id: int
    document_id: int
    path: str
    seq: int
    text: str
    heading: str | None
    page: int | None
    char_start: int
    char_end: int
    line_start: int
    line_end: int
    ocr: bool = False
    sha256: str | None = None  # of the document's file when it was read


class DocumentStore:
    """One SQLite connection (WAL). Not shared across threads: open one per thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(
                path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            wal_mode(self.db)
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            migrate(self.db, path, MIGRATIONS, "document store")
        except sqlite3.DatabaseError as exc:
            raise DocumentError(
                f"The document database {path} could not be opened: {exc}. Move it away to "
                "start again; your files are not touched.",
                str(exc),
            ) from exc

    def close(self) -> None:
        self.db.close()

    # -- schema ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with immediate(self.db) as db:
            yield db

    # -- collections -------------------------------------------------------------------------

    def create_collection(
        self, name: str, embedder: str, chunk_tokens: int, chunk_overlap: int
    ) -> Collection:
        name = name.strip()
        if not name or len(name) > 100 or any(c in name for c in "\0\n\r\t"):
            raise DocumentError("A collection name must be 1 to 100 characters on one line.")
        with self.transaction():
            if self.db.execute("SELECT 1 FROM collections WHERE name = ?", (name,)).fetchone():
                raise DocumentError(f"A collection called “{name}” already exists.")
            self.db.execute(
                "INSERT INTO collections (name, embedder, chunk_tokens, chunk_overlap, created) "
                "VALUES (?, ?, ?, ?, ?)",
                (name, embedder, chunk_tokens, chunk_overlap, time.time()),
            )
        return self.collection(name)

    def collection(self, name: str) -> Collection:
        row = self.db.execute(
            "SELECT id, name, embedder, chunk_tokens, chunk_overlap, embedder_next "
            "FROM collections WHERE name = ?",
            (name,),
        ).fetchone()
        if row is None:
            raise CollectionNotFound(f"There is no document collection called “{name}”.")
        sources = tuple(
            _fs_path(r[0])
            for r in self.db.execute(
                "SELECT path FROM sources WHERE collection_id = ? ORDER BY path", (row[0],)
            )
        )
        found = self.db.execute(
            "SELECT server, remote_name, dimensions, synced FROM shared_collections "
            "WHERE collection_id = ?",
            (row[0],),
        ).fetchone()
        shared = Shared(*found) if found else None
        return Collection(row[0], row[1], row[2], row[3], row[4], sources, row[5], shared)

    def set_embedder_next(self, collection: Collection, embedder: str | None) -> Collection:
        """Ask for the collection's passages to be embedded again with `embedder` (None, or
        the embedder it has, cancels a change not yet finished)."""
        with self.transaction():
            if embedder == collection.embedder:
                embedder = None
            self.db.execute(
                "UPDATE collections SET embedder_next = ? WHERE id = ?", (embedder, collection.id)
            )
            self.db.execute(
                "UPDATE chunks SET embedding_next = NULL WHERE collection_id = ?",
                (collection.id,),
            )
        return self.collection(collection.name)

    def to_reembed(
        self, collection: Collection, limit: int
    ) -> list[tuple[int, str, str | None, str, int]]:
        """Chunks still without a vector from the next embedder: (id, text, heading, document
        path, tokens)."""
        rows = self.db.execute(
            "SELECT c.id, c.text, c.heading, d.path, c.tokens FROM chunks c "
            "JOIN documents d ON d.id = c.document_id "
            "WHERE c.collection_id = ? AND c.embedding_next IS NULL ORDER BY c.id LIMIT ?",
            (collection.id, limit),
        ).fetchall()
        return [(r[0], r[1], r[2], _fs_path(r[3]), r[4]) for r in rows]

    def reembed_progress(self, collection: Collection) -> tuple[int, int]:
        done, total = self.db.execute(
            "SELECT COUNT(embedding_next), COUNT(*) FROM chunks WHERE collection_id = ?",
            (collection.id,),
        ).fetchone()
        return int(done), int(total)

    def put_next_embeddings(self, ids: list[int], vectors: np.ndarray) -> None:
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        with self.transaction():
            self.db.executemany(
                "UPDATE chunks SET embedding_next = ? WHERE id = ?",
                [(v.tobytes(), i) for i, v in zip(ids, vecs, strict=True)],
            )

    def switch_embedder(self, collection: Collection) -> Collection:
        """Every chunk has its next vector: make them the vectors, in one transaction. The
        vector index must then be rebuilt (the caller's business)."""
        assert collection.embedder_next is not None
        with self.transaction():
            left = self.db.execute(
                "SELECT COUNT(*) FROM chunks WHERE collection_id = ? AND embedding_next IS NULL",
                (collection.id,),
            ).fetchone()[0]
            if left:
                raise RuntimeError(f"{left} chunks have no vector from the new embedder yet")
            self.db.execute(
                "UPDATE chunks SET embedding = embedding_next, embedding_next = NULL, "
                "in_vectors = 0 WHERE collection_id = ?",
                (collection.id,),
            )
            self.db.execute(
                "UPDATE collections SET embedder = embedder_next, embedder_next = NULL "
                "WHERE id = ?",
                (collection.id,),
            )
        return self.collection(collection.name)

    def collections(self) -> list[Collection]:
        names = [r[0] for r in self.db.execute("SELECT name FROM collections ORDER BY name")]
        return [self.collection(n) for n in names]

    def add_sources(self, collection: Collection, paths: Iterable[str]) -> Collection:
        with self.transaction():
            self.db.executemany(
                "INSERT OR IGNORE INTO sources VALUES (?, ?)",
                [(collection.id, _db_path(p)) for p in paths],
            )
        return self.collection(collection.name)

    def remove_sources(self, collection: Collection, paths: Iterable[str]) -> Collection:
        with self.transaction():
            self.db.executemany(
                "DELETE FROM sources WHERE collection_id = ? AND path = ?",
                [(collection.id, _db_path(p)) for p in paths],
            )
        return self.collection(collection.name)

    def delete_collection(self, collection: Collection) -> None:
        with self.transaction():
            self.db.execute("DELETE FROM chunks WHERE collection_id = ?", (collection.id,))
            self.db.execute("DELETE FROM collections WHERE id = ?", (collection.id,))
            # Its vectors are dropped with its chromadb collection: nothing left to delete.
            self.db.execute(
                "DELETE FROM vector_deletions WHERE collection_id = ?", (collection.id,)
            )

    # -- documents ---------------------------------------------------------------------------

    def documents(self, collection: Collection) -> dict[str, DocumentRow]:
        rows = self.db.execute(
            "SELECT id, path, kind, size, mtime_ns, sha256, status, reason, pages, chunk_count "
            "FROM documents WHERE collection_id = ?",
            (collection.id,),
        )
        out = {}
        for r in rows:
            path = _fs_path(r[1])
            out[path] = DocumentRow(r[0], path, *r[2:])
        return out

    def counts(self, collection: Collection) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for status, n in self.db.execute(
            "SELECT status, COUNT(*) FROM documents WHERE collection_id = ? GROUP BY status",
            (collection.id,),
        ):
            out[status] = n
        out["chunks"] = self.db.execute(
            "SELECT COUNT(*) FROM chunks WHERE collection_id = ?", (collection.id,)
        ).fetchone()[0]
        return out

    def record_status(
        self,
        collection: Collection,
        path: str,
        status: str,
        reason: str | None,
        *,
        kind: str | None = None,
        size: int | None = None,
        mtime_ns: int | None = None,
        sha256: str | None = None,
    ) -> None:
        """A file that ends skipped or failed: its chunks (if any were indexed before) go."""
        assert status in STATUSES
        with self.transaction():
            self._upsert(collection, path, kind, size, mtime_ns, sha256, status, reason, None)
            doc_id = self._doc_id(collection, path)
            self.db.execute("DELETE FROM chunks WHERE document_id = ?", (doc_id,))
            self.db.execute("UPDATE documents SET chunk_count = 0 WHERE id = ?", (doc_id,))

    def touch(self, collection: Collection, path: str, size: int, mtime_ns: int) -> None:
        """Same content under a new mtime (copied, touched): remember the new stat only."""
        self.db.execute(
            "UPDATE documents SET size = ?, mtime_ns = ?, updated = ? "
            "WHERE collection_id = ? AND path = ?",
            (size, mtime_ns, time.time(), collection.id, _db_path(path)),
        )

    def replace_chunks(
        self,
        collection: Collection,
        path: str,
        *,
        kind: str,
        size: int,
        mtime_ns: int,
        sha256: str,
        pages: int | None,
        reason: str | None,
        chunks: list[NewChunk],
        embeddings: np.ndarray,
    ) -> None:
        """Swap a document's chunks for new ones and mark it indexed, in one transaction."""
        vectors = np.ascontiguousarray(embeddings, dtype=np.float32)
        if len(chunks) != len(vectors):
            raise ValueError("one embedding per chunk")
        with self.transaction():
            self._upsert(collection, path, kind, size, mtime_ns, sha256, "indexed", reason, pages)
            doc_id = self._doc_id(collection, path)
            self.db.execute("DELETE FROM chunks WHERE document_id = ?", (doc_id,))
            self.db.executemany(
                "INSERT INTO chunks (document_id, collection_id, seq, text, heading, page, "
                "char_start, char_end, line_start, line_end, tokens, embedding, ocr) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        doc_id,
                        collection.id,
                        c.seq,
                        c.text,
                        c.heading,
                        c.page,
                        c.char_start,
                        c.char_end,
                        c.line_start,
                        c.line_end,
                        c.tokens,
                        vectors[i].tobytes(),
                        int(c.ocr),
                    )
                    for i, c in enumerate(chunks)
                ],
            )
            self.db.execute(
                "UPDATE documents SET chunk_count = ? WHERE id = ?", (len(chunks), doc_id)
            )

    def forget(self, collection: Collection, paths: Iterable[str]) -> None:
        """Files that are gone from disk or from the collection's sources."""
        with self.transaction():
            for path in paths:
                doc_id = self._doc_id(collection, path)
                if doc_id is not None:
                    self.db.execute("DELETE FROM chunks WHERE document_id = ?", (doc_id,))
                    self.db.execute("DELETE FROM documents WHERE id = ?", (doc_id,))

    def _doc_id(self, collection: Collection, path: str) -> Any:
        row = self.db.execute(
            "SELECT id FROM documents WHERE collection_id = ? AND path = ?",
            (collection.id, _db_path(path)),
        ).fetchone()
        return None if row is None else row[0]

    def _upsert(
        self,
        collection: Collection,
        path: str,
        kind: str | None,
        size: int | None,
        mtime_ns: int | None,
        sha256: str | None,
        status: str,
        reason: str | None,
        pages: int | None,
    ) -> None:
        self.db.execute(
            "INSERT INTO documents (collection_id, path, kind, size, mtime_ns, sha256, status, "
            "reason, pages, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (collection_id, path) DO UPDATE SET kind = excluded.kind, "
            "size = excluded.size, mtime_ns = excluded.mtime_ns, sha256 = excluded.sha256, "
            "status = excluded.status, reason = excluded.reason, pages = excluded.pages, "
            "updated = excluded.updated",
            (
                collection.id,
                _db_path(path),
                kind,
                size,
                mtime_ns,
                sha256,
                status,
                reason,
                pages,
                time.time(),
            ),
        )

    # -- chunks and the vector index's bookkeeping --------------------------------------------

    def chunks_by_id(self, ids: Iterable[int]) -> dict[int, ChunkRow]:
        wanted = list(ids)
        out: dict[int, ChunkRow] = {}
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            marks = ",".join("?" * len(part))
            for r in self.db.execute(
                "SELECT c.id, c.document_id, d.path, c.seq, c.text, c.heading, c.page, "
                "c.char_start, c.char_end, c.line_start, c.line_end, c.ocr, d.sha256 "
                f"FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.id IN ({marks})",
                part,
            ):
                (chunk_id, doc_id, path, seq, text, heading, page, c0, c1, l0, l1, ocr, sha) = r
                out[chunk_id] = ChunkRow(
                    chunk_id,
                    doc_id,
                    _fs_path(path),
                    seq,
                    text,
                    heading,
                    page,
                    c0,
                    c1,
                    l0,
                    l1,
                    bool(ocr),
                    sha,
                )
        return out

    def embeddings(self, ids: list[int]) -> dict[int, np.ndarray]:
        out: dict[int, np.ndarray] = {}
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            marks = ",".join("?" * len(part))
            for chunk_id, blob in self.db.execute(
                f"SELECT id, embedding FROM chunks WHERE id IN ({marks})", part
            ):
                out[chunk_id] = np.frombuffer(blob, dtype=np.float32)
        return out

    def pending_vectors(
        self, collection: Collection, limit: int = 1000
    ) -> list[tuple[int, np.ndarray]]:
        rows = self.db.execute(
            "SELECT id, embedding FROM chunks WHERE collection_id = ? AND in_vectors = 0 "
            "ORDER BY id LIMIT ?",
            (collection.id, limit),
        ).fetchall()
        return [(r[0], np.frombuffer(r[1], dtype=np.float32)) for r in rows]

    def mark_in_vectors(self, ids: list[int]) -> None:
        with self.transaction():
            self.db.executemany(
                "UPDATE chunks SET in_vectors = 1 WHERE id = ?", [(i,) for i in ids]
            )

    def pending_deletions(self, collection: Collection) -> list[int]:
        return [
            r[0]
            for r in self.db.execute(
                "SELECT chunk_id FROM vector_deletions WHERE collection_id = ?", (collection.id,)
            )
        ]

    def clear_deletions(self, ids: list[int]) -> None:
        with self.transaction():
            self.db.executemany(
                "DELETE FROM vector_deletions WHERE chunk_id = ?", [(i,) for i in ids]
            )

    def vector_count(self, collection: Collection) -> int:
        return int(
            self.db.execute(
                "SELECT COUNT(*) FROM chunks WHERE collection_id = ? AND in_vectors = 1",
                (collection.id,),
            ).fetchone()[0]
        )

    def reset_vectors(self, collection: Collection | None = None) -> None:
        """The vector index was lost: every chunk must be added again."""
        with self.transaction():
            if collection is None:
                self.db.execute("UPDATE chunks SET in_vectors = 0")
                self.db.execute("DELETE FROM vector_deletions")
            else:
                self.db.execute(
                    "UPDATE chunks SET in_vectors = 0 WHERE collection_id = ?", (collection.id,)
                )
                self.db.execute(
                    "DELETE FROM vector_deletions WHERE collection_id = ?", (collection.id,)
                )

    def _in_collection(self, collection: Collection, ids: list[int]) -> set[int]:
        if not ids:
            return set()
        marks = ",".join("?" * len(ids))
        return {
            r[0]
            for r in self.db.execute(
                f"SELECT id FROM chunks WHERE collection_id = ? AND id IN ({marks})",
                (collection.id, *ids),
            )
        }

    def bm25(self, collection: Collection, query: str, limit: int) -> list[tuple[int, float]]:
        """Chunk ids ranked by BM25 (best first) with their scores (higher is better)."""
        match = fts_query(query)
        if not match:
            return []
        # FTS5 ranks alone about twice as fast as joined to chunks (measured at 15k passages):
        # rank a few times `limit` across all collections, keep this collection's; only when
        # other collections crowd it out is the joined query needed.
        fetch = limit * 3
        ranked = self.db.execute(
            "SELECT rowid, bm25(chunks_fts, 1.0, 2.0) AS score FROM chunks_fts "
            "WHERE chunks_fts MATCH ? ORDER BY score LIMIT ?",
            (match, fetch),
        ).fetchall()
        mine = self._in_collection(collection, [r[0] for r in ranked])
        rows = [r for r in ranked if r[0] in mine][:limit]
        if len(rows) < limit and len(ranked) == fetch:
            rows = self.db.execute(
                "SELECT f.rowid, bm25(chunks_fts, 1.0, 2.0) AS score FROM chunks_fts f "
                "JOIN chunks c ON c.id = f.rowid "
                "WHERE chunks_fts MATCH ? AND c.collection_id = ? ORDER BY score LIMIT ?",
                (match, collection.id, limit),
            ).fetchall()
        # SQLite's bm25() is negative, more negative is better; flip it for people.
        return [(r[0], -float(r[1])) for r in rows]


_FTS_WORD_CHARS = set("_")
# Words nearly every English passage has. OR-ed into the query they match almost every chunk,
# so SQLite scores them all (about 100 ms at 15k passages) for almost no ranking signal.
_STOPWORDS = (
    "a an and are as at be been but by can could do does did for from had has have how i if "
    "in into is it its me my of on or our should so than that the their them then there these "
    "they this to was we were what when where which who whom why will with would you your"
)
STOPWORDS = frozenset(_STOPWORDS.split())


def fts_query(text: str) -> str:
    """A user's words as an FTS5 query that cannot be a syntax error: each term quoted, OR-ed
    (BM25 then ranks chunks with more and rarer terms first). Stop words are left out unless
    the question has nothing else ("what is it?")."""
    terms: list[str] = []
    word: list[str] = []
    for ch in text + " ":
        if ch.isalnum() or ch in _FTS_WORD_CHARS:
            word.append(ch)
        elif word:
            terms.append("".join(word))
            word = []
    unique = list(dict.fromkeys(t.lower() for t in terms if len(t) > 1 or t.isdigit()))
    content = [t for t in unique if t not in STOPWORDS]
    return " OR ".join(f'"{t}"' for t in (content or unique)[:64])


# A Linux file name is bytes; one that is not UTF-8 reaches Python with lone surrogates, which
# SQLite's UTF-8 text refuses (one such name used to abort the whole sync). It is kept as its
# bytes in hex behind a NUL, which no real path contains, and given back exactly as it was.
_RAW_PATH = "\x00raw:"


def _db_path(path: str) -> str:
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return _RAW_PATH + os.fsencode(path).hex()


def _fs_path(text: str) -> str:
    return (
        os.fsdecode(bytes.fromhex(text[len(_RAW_PATH) :])) if text.startswith(_RAW_PATH) else text
    )
