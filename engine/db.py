"""SQLite helpers shared by the stores (chats, documents): WAL on open, write transactions,
and named migrations applied once each, after a backup of a file that already had data."""

from __future__ import annotations

import contextlib
import logging
import shutil
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

log = logging.getLogger(__name__)


def wal_mode(db: sqlite3.Connection, attempts: int = 100) -> None:
    """Switch to WAL. Two first openers of a new file (the window's pages, a CLI command) can
    race here, and SQLite answers "database is locked" at once, without waiting on its busy
    timeout; so wait and retry."""
    for attempt in range(attempts):
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.05)


@contextlib.contextmanager
def immediate(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction (the connection must be in autocommit mode: isolation_level=None)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def split_sql(script: str) -> list[str]:
    """Split a migration into statements; trigger bodies contain semicolons."""
    statements: list[str] = []
    current: list[str] = []
    in_trigger = False
    for line in script.strip().splitlines():
        current.append(line)
        stripped = line.strip().upper()
        if stripped.startswith("CREATE TRIGGER"):
            in_trigger = True
        if (in_trigger and stripped == "END;") or (not in_trigger and stripped.endswith(";")):
            statements.append("\n".join(current))
            current = []
            in_trigger = False
    if "".join(current).strip():
        statements.append("\n".join(current))
    return statements


def migrate(
    db: sqlite3.Connection, path: Path, migrations: Sequence[tuple[str, str]], what: str
) -> None:
    """Apply the named SQL migrations not applied yet, each in its own transaction. Before the
    first one on a file that has applied migrations, copy it to `<file>.before-<name>`.
    executescript is not used: it commits, and a migration must be all or nothing."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied REAL NOT NULL)"
    )
    done = {r[0] for r in db.execute("SELECT name FROM migrations")}
    pending = [(name, sql) for name, sql in migrations if name not in done]
    if pending and done:
        backup = path.with_name(f"{path.name}.before-{pending[0][0]}")
        if isinstance(db, sqlite3.Connection):
            with sqlite3.connect(backup) as copy:
                db.backup(copy)
            copy.close()
        else:  # SQLCipher: a copy of the encrypted file stays encrypted
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            shutil.copyfile(path, backup)
        log.info("%s backed up to %s before migrating", what, backup)
    for name, sql in pending:
        with immediate(db):
            if db.execute("SELECT 1 FROM migrations WHERE name = ?", (name,)).fetchone():
                continue  # another connection applied it while we waited for the lock
            for statement in split_sql(sql):
                db.execute(statement)
            db.execute("INSERT INTO migrations VALUES (?, ?)", (name, time.time()))
        log.info("%s migration applied: %s", what, name)
