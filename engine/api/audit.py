"""The API server's audit log: who called what, when, with what result. Never content.

One JSON line per request in `logs/api-audit.jsonl` (rotated to `.1` past `max_bytes`): the
time, the client address, method and path (no query), status, duration, whether the token was
right, the model, and token counts. Prompts, answers, embeddings input and document passages
never reach it, whatever the logging level.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

LOG_NAME = "api-audit.jsonl"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    time: float
    client: str
    method: str
    path: str
    status: int
    duration_ms: int
    authorized: bool
    model: str | None = None
    stream: bool | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: str | None = None  # the error's type, never its text


class AuditLog:
    """Thread-safe appender; a failure to write is logged, never raised into a request."""

    def __init__(self, folder: Path, max_bytes: int = 5_000_000) -> None:
        self.path = folder / LOG_NAME
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def write(self, entry: Entry) -> None:
        line = json.dumps(asdict(entry), separators=(",", ":")) + "\n"
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                if self.path.exists() and self.path.stat().st_size > self.max_bytes:
                    os.replace(self.path, self.path.with_name(LOG_NAME + ".1"))
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(line)
            except OSError as exc:
                log.error("API audit entry not written: %s", exc)

    def read(self, limit: int = 1000) -> list[dict[str, Any]]:
        """The newest `limit` entries, oldest first."""
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()[-limit:]
        except OSError:
            return []
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out
