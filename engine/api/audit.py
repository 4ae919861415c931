"""The API server's audit log: who called what, when, with what result. Never content.

One chained JSON line per request in `logs/api-audit.jsonl` (`engine.audit`: each names the
hash of the line before it, so `hearth audit verify` finds an edited, removed or reordered
line): the time it was written, the client address, method and path (no query), status,
duration, whether the token was right, the model, and token counts. Prompts, answers,
embeddings input and document passages never reach it, whatever the logging level. Past
`max_bytes` the oldest half is removed, with a chained record that says so.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engine.audit import AuditTrail

LOG_NAME = "api-audit.jsonl"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    time: float  # when the request came; the record's own `time` is when it was written
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
        self.trail = AuditTrail(self.path, max_bytes=max_bytes)

    def write(self, entry: Entry) -> None:
        fields = asdict(entry)
        fields["started"] = round(fields.pop("time"), 3)
        try:
            self.trail.append("api", **fields)
        except OSError as exc:
            log.error("API audit entry not written: %s", exc)

    def read(self, limit: int = 1000) -> list[dict[str, Any]]:
        """The newest `limit` entries, oldest first (retention records left out)."""
        return [r for r in self.trail.records() if r.get("kind", "api") == "api"][-limit:]
