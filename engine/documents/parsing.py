"""Reads files through the parse worker process, with a timeout and a memory cap.

One long-lived child serves many files (starting Python per file would cost more than most
parses). A file that hangs the child past the timeout, or kills it, is marked failed with the
reason; the next file gets a fresh child. The timeout counts from the request or from the
child's last progress report: OCR reports each scanned page, so a 300-page scan gets the
timeout for each page (a page that hangs still fails the file) rather than for the whole.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from engine import workers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParseResult:
    status: str  # "ok", "skipped" or "failed"
    reason: str | None = None
    kind: str | None = None
    text: str = ""
    pages: list[int] = field(default_factory=list)
    headings: list[tuple[int, str]] = field(default_factory=list)
    note: str | None = None
    ocr_pages: list[int] = field(default_factory=list)


class FileParser:
    """Parent side of the parse worker. Use from one thread; `close()` when done."""

    def __init__(self, *, timeout_s: float = 60.0, memory_mb: int = 2048, ocr: bool = True) -> None:
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.ocr = ocr
        self._proc: subprocess.Popen[bytes] | None = None
        self._results: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._next_id = 0

    def __enter__(self) -> FileParser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def parse(
        self, path: Path, kind: str, progress: Callable[[str], None] | None = None
    ) -> ParseResult:
        """Read one file in the child. `progress` is called (on this thread) with each report
        of a long read, such as "OCR: page 3 of 40"."""
        self._ensure_child()
        self._next_id += 1
        req_id = self._next_id
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        try:
            proc.stdin.write(
                json.dumps({"id": req_id, "path": str(path), "kind": kind, "ocr": self.ocr}).encode(
                    "utf-8", "surrogateescape"
                )
                + b"\n"
            )
            proc.stdin.flush()
        except OSError:
            self._kill()
            return ParseResult("failed", "the reader process stopped unexpectedly")
        deadline = time.monotonic() + self.timeout_s
        last: str | None = None
        while True:
            try:
                msg = self._results.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self._kill()
                if last is not None:
                    why = f"made no progress for {self.timeout_s:g} s (after “{last}”)"
                    return ParseResult("failed", why)
                return ParseResult("failed", f"took longer than {self.timeout_s:g} s to read")
            if msg is None:  # the child died on this file
                code = self._kill()
                why = (
                    "was killed (probably out of memory)"
                    if code == -9
                    else f"crashed (exit code {code})"
                )
                return ParseResult("failed", f"the reader process {why} on this file")
            if msg.get("id") != req_id:
                continue
            if "progress" in msg:  # alive and moving: a fresh budget for the next step
                deadline = time.monotonic() + self.timeout_s
                last = _valid_text(str(msg["progress"]))
                if progress is not None:
                    progress(last)
                continue
            if msg["status"] != "ok":
                return ParseResult(msg["status"], msg.get("reason"))
            return ParseResult(
                "ok",
                None,
                msg["kind"],
                _valid_text(msg["text"]),
                list(msg["pages"]),
                [(int(o), _valid_text(h)) for o, h in msg["headings"]],
                msg.get("note"),
                [int(n) for n in msg.get("ocr_pages", [])],
            )

    def close(self) -> None:
        self._kill()

    def abort(self) -> None:
        """Kill the child now (from any thread): a `parse` waiting on it returns at once."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.kill()

    def _ensure_child(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        self._kill()
        argv = workers.command("engine.documents.parse_worker")
        env = dict(
            os.environ,
            PYTHONUNBUFFERED="1",
            HEARTH_PARSE_MEMORY_MB=str(self.memory_mb),
            OMP_NUM_THREADS="1",
        )
        self._results = queue.Queue()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            close_fds=True,
        )
        assert proc.stdout is not None
        threading.Thread(
            target=_read_results,
            args=(proc.stdout, self._results),
            daemon=True,
            name=f"hearth-parse-results-{proc.pid}",
        ).start()
        self._proc = proc
        log.debug("parse worker started (pid %s)", proc.pid)

    def _kill(self) -> int | None:
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.stdin.close()  # type: ignore[union-attr]
            try:
                proc.wait(0.2)
            except subprocess.TimeoutExpired:
                proc.kill()
        try:
            code = proc.wait(5)
        except subprocess.TimeoutExpired:
            log.error("parse worker %s did not exit after SIGKILL", proc.pid)
            code = None
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        return code


def _read_results(stream: IO[bytes], results: queue.Queue[dict[str, Any] | None]) -> None:
    try:
        for line in stream:
            try:
                results.put(json.loads(line))
            except ValueError:
                log.warning("parse worker wrote a line that is not JSON")
    except (OSError, ValueError):
        pass
    results.put(None)


def _valid_text(text: str) -> str:
    """Replace lone surrogates (broken PDF strings) so the text can be stored as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text
