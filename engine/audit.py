"""Hash-chained audit trails: append-only JSON lines whose every record names the SHA-256 of the
line before it, so an edited, removed or reordered line breaks the chain where it happened.

A record is one line of canonical JSON (sorted keys, no spaces): `seq` (1, 2, ...), `time`
(Unix seconds), `kind`, the fields of that kind, and `prev`, the SHA-256 of the previous line's
exact bytes (64 zeros for the first). Lines written before a trail was chained (the API log's
old format) stay as they are; the first chained record links to the last of them.

What a chain cannot show by itself: that its newest records were removed or its last record
changed (nothing comes after them to disagree), or that the whole file was rewritten with new
hashes. `head()` gives the newest record's `seq` and hash: noted somewhere else (a ticket, an
exported answer record, an auditor's file), `verify(..., head=...)` proves the trail still holds
that record unchanged, and so everything before it.

Retention removes the oldest records and first appends a chained `retention` record that says
how many went, up to which `seq`, and the hash the first kept record links to; `verify` accepts
a trail that starts there only through such a record.

Appends are serialised across threads and processes (a lock file beside the trail). A line cut
short by a killed process is reported by `verify`, and the next append starts on a new line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock

log = logging.getLogger(__name__)

GENESIS = "0" * 64
_TAIL_READ = 256 * 1024  # far above any record: the last line is found within it


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def encode(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> Head:
        seq, _, digest = text.strip().partition(":")
        if not seq.isdigit() or len(digest) != 64:
            raise ValueError(
                f"a head is SEQ:SHA256 (what `hearth audit head` prints), not {text!r}"
            )
        return cls(int(seq), digest.lower())


@dataclass
class Report:
    path: Path
    records: int = 0  # chained records
    unchained: int = 0  # lines from before the trail was chained
    first_seq: int | None = None
    head: Head | None = None
    retained_from: int | None = None  # the trail starts after records retention removed
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class AuditTrail:
    """One chained JSON-lines file. Thread- and process-safe appends."""

    def __init__(self, path: Path, max_bytes: int | None = None) -> None:
        self.path = path
        self.max_bytes = max_bytes  # past it, the oldest half goes (with a retention record)
        self._thread_lock = threading.Lock()

    def _lock(self) -> FileLock:
        return FileLock(str(self.path) + ".lock")

    def append(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Chain one record and return it. Raises OSError when it cannot be written (a full
        disk): callers decide whether that stops their work."""
        with self._thread_lock, self._lock():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            record = self._append_locked(kind, fields)
            if self.max_bytes and self.path.stat().st_size > self.max_bytes:
                self._drop_oldest_locked(len(list(self.lines())) // 2, "size")
            return record

    def _append_locked(self, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
        last, prev_seq, torn = self._tail()
        record = {
            **fields,
            "kind": kind,
            "seq": prev_seq + 1,
            "time": round(time.time(), 3),
            "prev": line_hash(last) if last is not None else GENESIS,
        }
        data = encode(record) + b"\n"
        with self.path.open("ab") as fh:
            if torn:
                fh.write(b"\n")  # a line a killed process left unfinished stays on its own
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        return record

    def _tail(self) -> tuple[bytes | None, int, bool]:
        """The last line (even one cut short: the next record links to what is there), the
        last `seq` written, and whether the file ends mid-line."""
        try:
            with self.path.open("rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - _TAIL_READ))
                tail = fh.read()
        except FileNotFoundError:
            return None, 0, False
        torn = bool(tail) and not tail.endswith(b"\n")
        lines = [line for line in tail.splitlines() if line.strip()]
        seq = next((s for s in map(_seq, reversed(lines)) if s is not None), 0)
        return (lines[-1] if lines else None), seq, torn

    def lines(self) -> Iterator[bytes]:
        """The non-blank lines, as written (without their newline)."""
        try:
            with self.path.open("rb") as fh:
                for line in fh:
                    if line.strip():
                        yield line.rstrip(b"\n")
        except FileNotFoundError:
            return

    def records(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The newest `limit` records (all when None), oldest first; unreadable lines left out."""
        out = []
        for line in self.lines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out[-limit:] if limit else out

    def head(self) -> Head | None:
        last, seq, _ = self._tail()
        return None if last is None else Head(seq, line_hash(last))

    # -- retention -----------------------------------------------------------------------------

    def remove_before(self, cutoff: float, reason: str) -> int:
        """Remove the records older than `cutoff` (Unix time), oldest first, stopping at the
        first newer one; a chained `retention` record says what went. Returns how many."""
        with self._thread_lock, self._lock():
            count = 0
            for line in self.lines():
                try:
                    when = float(json.loads(line).get("time", 0))
                except ValueError:
                    when = 0.0
                if when >= cutoff:
                    break
                count += 1
            return self._drop_oldest_locked(count, reason) if count else 0

    def _drop_oldest_locked(self, count: int, reason: str) -> int:
        lines = list(self.lines())
        count = min(count, len(lines) - 1)  # the newest always stays: it carries the chain on
        if count <= 0:
            return 0
        removed, kept = lines[:count], lines[count:]
        seqs = [_seq(line) for line in removed]
        self._append_locked(
            "retention",
            {
                "reason": reason,
                "removed": count,
                "removed_through_seq": max((s for s in seqs if s is not None), default=0),
                "first_kept_prev": line_hash(removed[-1]),
            },
        )
        kept.append(self._tail()[0] or b"")
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("wb") as fh:
            fh.write(b"\n".join(kept) + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        return count


def _seq(line: bytes) -> int | None:
    try:
        value = json.loads(line).get("seq")
    except (ValueError, AttributeError):
        return None
    return int(value) if isinstance(value, int) else None


def verify(path: Path, head: Head | None = None) -> Report:
    """Walk the trail and say where its chain breaks, if anywhere."""
    report = Report(path)
    trail = AuditTrail(path)
    prev_line: bytes | None = None
    prev_seq: int | None = None
    chained = False
    retentions: dict[int, str] = {}  # removed_through_seq -> the prev the first kept must have
    first_prev: tuple[int, str] | None = None
    for number, line in enumerate(trail.lines(), start=1):
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not an object")
        except ValueError:
            report.problems.append(f"line {number} is not a whole record (cut short or damaged)")
            prev_line, prev_seq = line, None
            continue
        if "prev" not in record or "seq" not in record:
            if chained:
                report.problems.append(f"line {number} has no chain fields (inserted?)")
            else:
                report.unchained += 1
            prev_line = line
            continue
        seq, prev = record["seq"], record["prev"]
        if not chained:
            chained = True
            report.first_seq = seq
            if prev_line is None and (seq != 1 or prev != GENESIS):
                first_prev = (seq, prev)  # records before it were removed: retention must say so
            elif prev_line is not None and prev != line_hash(prev_line):
                report.problems.append(
                    f"line {number} (seq {seq}) does not link to the line before it"
                )
        else:
            if prev_line is None or prev != line_hash(prev_line):
                report.problems.append(
                    f"seq {seq} (line {number}) does not link to the line before it: that line "
                    "was changed, or lines were removed or reordered here"
                )
            if prev_seq is not None and seq != prev_seq + 1:
                report.problems.append(
                    f"seq {seq} (line {number}) follows seq {prev_seq}: records are missing or "
                    "out of order"
                )
        if record.get("kind") == "retention" and isinstance(record.get("removed_through_seq"), int):
            retentions[record["removed_through_seq"]] = str(record.get("first_kept_prev", ""))
        report.records += 1
        report.head = Head(seq, line_hash(line))
        prev_line, prev_seq = line, seq
    if first_prev is not None:
        seq, prev = first_prev
        if retentions.get(seq - 1) == prev:
            report.retained_from = seq
        else:
            report.problems.append(
                f"the trail starts at seq {seq}, and no retention record says the ones before it "
                "were removed"
            )
    if head is not None:
        found = _find(trail, head.seq)
        if found is None:
            report.problems.append(
                f"the noted head (seq {head.seq}) is no longer in the trail: records were removed"
            )
        elif line_hash(found) != head.hash:
            report.problems.append(
                f"seq {head.seq} is not the record that was noted: the trail was rewritten"
            )
    return report


def _find(trail: AuditTrail, seq: int) -> bytes | None:
    for line in trail.lines():
        if _seq(line) == seq:
            return line
    return None


def apply_retention(trail: AuditTrail, days: int, now: float | None = None) -> int:
    """Remove records older than `days` (0 keeps everything); errors are logged, not raised."""
    if days <= 0:
        return 0
    try:
        return trail.remove_before((now or time.time()) - days * 86400, f"older than {days} days")
    except OSError as exc:
        log.error("audit retention not applied to %s: %s", trail.path, exc)
        return 0
