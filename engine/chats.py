"""The chat store: chats, their settings and their messages, in SQLite.

WAL journal, one short transaction per change, named migrations with a backup first (as the
documents store). A message is committed the moment it exists: the user's message before the
model starts, the answer as a "streaming" row that is updated while it grows. A process killed
during an answer therefore loses nothing committed; the next open marks such rows
"interrupted" instead of pretending they finished.

Thread-safe: one connection behind a lock. The GUI reads and renames on its thread (each call
is a millisecond-scale statement); answers are written from the pool thread that streams them.
A search is the one read that scans message text (tens of milliseconds for 1,000 long chats, see
bench/bench_chat_search.py): it runs off the GUI thread, on a second, read-only connection with
its own lock, so it neither waits for nor holds up the other calls (WAL: a reader sees the last
commit and blocks no writer).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import vault
from engine.db import immediate, migrate, wal_mode
from engine.errors import HearthError
from engine.paths import DataPaths

log = logging.getLogger(__name__)

DEFAULT_TITLE = "New chat"
STATUSES = ("done", "streaming", "stopped", "interrupted", "failed")
# SQLite refuses a LIKE pattern over SQLITE_MAX_LIKE_PATTERN_LENGTH (50,000 bytes by default);
# a longer search is matched with instr() instead, under this with room to spare.
LIKE_PATTERN_MAX_BYTES = 10_000
# An encrypted reader decrypts every page it scans. With the default 2 MB cache each search of
# 1,000 long chats decrypted the whole file again (~200 ms); with a cache that holds it, 3-70 ms
# (bench/bench_chat_search.py). Plain files keep the default: the OS caches them, and a big cache
# made a search right after another connection's commit twice as slow (SQLite 3.40 drops it).
ENCRYPTED_SEARCH_CACHE_KIB = 65_536


class ChatNotFound(HearthError):
    pass


@dataclass(frozen=True)
class Chat:
    id: int
    title: str
    created: float
    updated: float
    model: str | None  # None: the default model from settings
    system_prompt: str | None  # None: the default from settings
    sampling: dict[str, Any] = field(default_factory=dict)  # overrides of sampling.* settings
    collections: tuple[str, ...] = ()
    documents_only: bool = False


@dataclass(frozen=True)
class Message:
    id: int
    chat_id: int
    seq: int
    role: str  # "user" or "assistant"
    content: str
    status: str
    created: float
    model: str | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    grounding: dict[str, Any] | None = None  # engine.documents.grounding.Grounding.as_dict()


MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "001_initial",
        """
        CREATE TABLE chats (
            id INTEGER PRIMARY KEY AUTOINCREMENT,  -- ids never reused: the UI holds them
            title TEXT NOT NULL,
            created REAL NOT NULL,
            updated REAL NOT NULL,
            model TEXT,
            system_prompt TEXT,
            sampling TEXT NOT NULL DEFAULT '{}',
            collections TEXT NOT NULL DEFAULT '[]',
            documents_only INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,  -- ids never reused: the UI holds them
            chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
            content TEXT NOT NULL,
            status TEXT NOT NULL,
            created REAL NOT NULL,
            model TEXT,
            sources TEXT NOT NULL DEFAULT '[]',
            stats TEXT,
            notes TEXT NOT NULL DEFAULT '[]',
            UNIQUE (chat_id, seq)
        );
        CREATE INDEX messages_by_chat ON messages (chat_id, seq);
        CREATE INDEX chats_by_updated ON chats (updated DESC);
    """,
    ),
    # Each answer sentence checked against the sources (engine.documents.grounding).
    ("002_grounding", "ALTER TABLE messages ADD COLUMN grounding TEXT;"),
)


def open_store(path: Path, paths: DataPaths, encrypt: bool) -> ChatStore:
    """The chat store as the settings want it: encrypted with the keyring's key when `encrypt`,
    converting the file in place when the setting changed since the last start."""
    if vault.is_encrypted(path):
        key = vault.key(paths, create=False)
        if key is None:
            raise vault.EncryptionUnavailable(
                "The chat history is encrypted, but its key is not in this computer's keyring, "
                "so it cannot be read."
            )
        if encrypt:
            return ChatStore(path, key=key)
        vault.convert(path, key, encrypt=False)
        vault.forget_key(paths)
        return ChatStore(path)
    if encrypt:
        key = vault.key(paths, create=True)
        assert key is not None
        if path.exists():
            vault.convert(path, key, encrypt=True)
        return ChatStore(path, key=key)
    return ChatStore(path)


class ChatStore:
    def __init__(self, path: Path, key: str | None = None) -> None:
        """Open (or create) the store; with `key`, an SQLCipher database encrypted with it."""
        self.path = path
        self.encrypted = key is not None
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = _connect(path, key)
        wal_mode(self._db)
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: a crash loses no committed data
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA secure_delete=ON")  # deleted text is zeroed, not left in pages
        with self._lock:
            migrate(self._db, path, MIGRATIONS, "chat store")
        with self._tx() as db:
            n = db.execute(
                "UPDATE messages SET status='interrupted' WHERE status='streaming'"
            ).rowcount
        if n:
            log.info("%d answer(s) left unfinished by an earlier run marked interrupted", n)
        # Searches read on their own connection (see the module docstring). An in-memory store
        # has no file a second connection could open: it searches on the first.
        self._reader: Any = self._db
        self._read_lock: threading.RLock | threading.Lock = self._lock
        if str(path) != ":memory:":
            self._reader = _connect(path, key)
            self._reader.execute("PRAGMA query_only=ON")
            if key is not None:
                self._reader.execute(f"PRAGMA cache_size=-{ENCRYPTED_SEARCH_CACHE_KIB}")
            self._read_lock = threading.Lock()

    def close(self) -> None:
        """Close both connections; a search still running is waited for."""
        with self._read_lock, self._lock:
            if self._reader is not self._db:
                self._reader.close()
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock, immediate(self._db) as db:
            yield db

    # -- chats -------------------------------------------------------------------------

    def create(
        self,
        *,
        title: str = DEFAULT_TITLE,
        model: str | None = None,
        system_prompt: str | None = None,
        sampling: dict[str, Any] | None = None,
        collections: tuple[str, ...] | list[str] = (),
        documents_only: bool = False,
    ) -> Chat:
        now = time.time()
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO chats (title, created, updated, model, system_prompt, sampling, "
                "collections, documents_only) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    title,
                    now,
                    now,
                    model,
                    system_prompt,
                    json.dumps(sampling or {}),
                    json.dumps(list(collections)),
                    int(documents_only),
                ),
            )
            chat_id = int(cur.lastrowid or 0)
        return self.chat(chat_id)

    def chat(self, chat_id: int) -> Chat:
        with self._lock:
            row = self._db.execute("SELECT * FROM chats WHERE id=?", (chat_id,)).fetchone()
        if row is None:
            raise ChatNotFound("That chat no longer exists.")
        return _chat(row)

    def chats(self, search: str = "") -> list[Chat]:
        """Newest first. With `search`, the chats whose title or any message contains it:
        the text as typed (trimmed; every character literal, % and _ included), ignoring
        the case of A-Z (SQLite's LIKE; other letters match their own case only).

        A search scans the message text: call it off the GUI thread. It reads on its own
        connection, so it never waits behind, nor delays, the store's other calls."""
        return [_chat(r) for r in self._find(search, "c.*")]

    def titles(self, search: str = "") -> list[tuple[int, str]]:
        """(id, title) of the chats `chats(search)` returns, in the same order: what a list
        of chats shows, without decoding every chat's settings (for 1,000 chats that
        decoding costs more than the listing query itself)."""
        return [(r["id"], r["title"]) for r in self._find(search, "c.id, c.title")]

    def _find(self, search: str, columns: str) -> list[sqlite3.Row]:
        needle = search.strip().replace("\0", "")  # a NUL would end SQLite's pattern early
        if not needle:
            with self._lock:
                return list(
                    self._db.execute(
                        f"SELECT {columns} FROM chats AS c ORDER BY c.updated DESC, c.id DESC"
                    )
                )
        if len(needle.encode()) <= LIKE_PATTERN_MAX_BYTES:
            match, arg = "{col} LIKE ?1 ESCAPE '\\'", "%" + _escape_like(needle) + "%"
        else:  # the same ASCII-only case folding as LIKE, without its pattern limit
            match, arg = "instr(lower({col}), lower(?1)) > 0", needle
        # EXISTS stops at a chat's first matching message, and a chat whose title matches
        # reads none: a word found in most chats costs a few ms instead of a full scan.
        sql = (
            f"SELECT {columns} FROM chats AS c WHERE "
            + match.format(col="c.title")
            + " OR EXISTS (SELECT 1 FROM messages AS m WHERE m.chat_id = c.id AND "
            + match.format(col="m.content")
            + ") ORDER BY c.updated DESC, c.id DESC"
        )
        with self._read_lock:
            return list(self._reader.execute(sql, (arg,)))

    def rename(self, chat_id: int, title: str) -> Chat:
        title = " ".join(title.split())[:200]
        if not title:
            raise HearthError("A chat needs a name.")
        self._update_chat(chat_id, title=title)
        return self.chat(chat_id)

    def configure(self, chat_id: int, **changes: Any) -> Chat:
        """Change a chat's model, system_prompt, sampling, collections or documents_only."""
        allowed = {"model", "system_prompt", "sampling", "collections", "documents_only"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"unknown chat settings: {sorted(unknown)}")
        values = dict(changes)
        if "sampling" in values:
            values["sampling"] = json.dumps(values["sampling"] or {})
        if "collections" in values:
            values["collections"] = json.dumps(list(values["collections"]))
        if "documents_only" in values:
            values["documents_only"] = int(bool(values["documents_only"]))
        self._update_chat(chat_id, touch=False, **values)
        return self.chat(chat_id)

    def delete(self, chat_id: int) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM chats WHERE id=?", (chat_id,))

    def delete_older_than(self, days: int) -> int:
        """Delete chats untouched for `days` days (data retention); how many went."""
        cutoff = time.time() - days * 86400
        with self._tx() as db:
            n = int(db.execute("DELETE FROM chats WHERE updated < ?", (cutoff,)).rowcount)
        if n:
            with self._lock:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # out of the WAL too
            log.info("retention: %d chat(s) older than %d days deleted", n, days)
        return n

    def _update_chat(self, chat_id: int, touch: bool = True, **values: Any) -> None:
        if touch:
            values["updated"] = time.time()
        cols = ", ".join(f"{k}=?" for k in values)
        with self._tx() as db:
            n = db.execute(
                f"UPDATE chats SET {cols} WHERE id=?",  # our column names
                (*values.values(), chat_id),
            ).rowcount
        if not n:
            raise ChatNotFound("That chat no longer exists.")

    # -- messages ----------------------------------------------------------------------

    def messages(self, chat_id: int) -> list[Message]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM messages WHERE chat_id=? ORDER BY seq", (chat_id,)
            ).fetchall()
        return [_message(r) for r in rows]

    def message(self, message_id: int) -> Message:
        with self._lock:
            row = self._db.execute("SELECT * FROM messages WHERE id=?", (message_id,)).fetchone()
        if row is None:
            raise ChatNotFound("That message no longer exists.")
        return _message(row)

    def add_message(
        self,
        chat_id: int,
        role: str,
        content: str,
        *,
        status: str = "done",
        model: str | None = None,
        sources: list[dict[str, Any]] | None = None,
        notes: list[str] | None = None,
    ) -> Message:
        assert status in STATUSES
        now = time.time()
        with self._tx() as db:
            seq = db.execute(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE chat_id=?", (chat_id,)
            ).fetchone()[0]
            try:
                cur = db.execute(
                    "INSERT INTO messages (chat_id, seq, role, content, status, created, model, "
                    "sources, notes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        chat_id,
                        seq,
                        role,
                        content,
                        status,
                        now,
                        model,
                        json.dumps(sources or []),
                        json.dumps(notes or []),
                    ),
                )
            except sqlite3.IntegrityError:
                raise ChatNotFound("That chat no longer exists.") from None
            db.execute("UPDATE chats SET updated=? WHERE id=?", (now, chat_id))
            if role == "user" and seq == 1:  # name a new chat after its first question
                db.execute(
                    "UPDATE chats SET title=? WHERE id=? AND title=?",
                    (_title_from(content), chat_id, DEFAULT_TITLE),
                )
            message_id = int(cur.lastrowid or 0)
        return self.message(message_id)

    def update_message(
        self,
        message_id: int,
        *,
        content: str | None = None,
        status: str | None = None,
        stats: dict[str, Any] | None = None,
        sources: list[dict[str, Any]] | None = None,
        notes: list[str] | None = None,
        grounding: dict[str, Any] | None = None,
    ) -> None:
        values: dict[str, Any] = {}
        if content is not None:
            values["content"] = content
        if status is not None:
            assert status in STATUSES
            values["status"] = status
        if stats is not None:
            values["stats"] = json.dumps(stats)
        if sources is not None:
            values["sources"] = json.dumps(sources)
        if notes is not None:
            values["notes"] = json.dumps(notes)
        if grounding is not None:
            values["grounding"] = json.dumps(grounding)
        if not values:
            return
        cols = ", ".join(f"{k}=?" for k in values)
        with self._tx() as db:
            db.execute(
                f"UPDATE messages SET {cols} WHERE id=?",  # our column names
                (*values.values(), message_id),
            )

    def delete_from(self, message_id: int) -> None:
        """Delete a message and everything after it in its chat (edit and resend,
        regenerate)."""
        msg = self.message(message_id)
        with self._tx() as db:
            db.execute("DELETE FROM messages WHERE chat_id=? AND seq>=?", (msg.chat_id, msg.seq))

    def export(self, chat_id: int) -> dict[str, Any]:
        """A chat with its messages and sources as plain data (JSON-ready)."""
        chat = self.chat(chat_id)
        return {
            "chat": chat.__dict__ | {"collections": list(chat.collections)},
            "messages": [m.__dict__ for m in self.messages(chat_id)],
        }


def _connect(path: Path, key: str | None) -> Any:
    """A connection in autocommit mode, keyed for SQLCipher when `key` is given."""
    dbapi: Any = vault.sqlcipher() if key is not None else sqlite3
    db = dbapi.connect(str(path), check_same_thread=False, isolation_level=None, timeout=10)
    db.row_factory = dbapi.Row
    if key is not None:
        try:
            vault.apply_key(db, key)
        except vault.EncryptionUnavailable:
            db.close()
            raise
    return db


def _chat(row: sqlite3.Row) -> Chat:
    return Chat(
        row["id"],
        row["title"],
        row["created"],
        row["updated"],
        row["model"],
        row["system_prompt"],
        json.loads(row["sampling"] or "{}"),
        tuple(json.loads(row["collections"] or "[]")),
        bool(row["documents_only"]),
    )


def _message(row: sqlite3.Row) -> Message:
    return Message(
        row["id"],
        row["chat_id"],
        row["seq"],
        row["role"],
        row["content"],
        row["status"],
        row["created"],
        row["model"],
        json.loads(row["sources"] or "[]"),
        json.loads(row["stats"]) if row["stats"] else None,
        json.loads(row["notes"] or "[]"),
        json.loads(row["grounding"]) if row["grounding"] else None,
    )


def _title_from(text: str) -> str:
    words = " ".join(text.split())
    return words if len(words) <= 60 else words[:57].rsplit(" ", 1)[0] + "…"


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
