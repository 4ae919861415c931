"""SQLite helpers shared by the stores (chats, documents)."""

from __future__ import annotations

import sqlite3
import time


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
