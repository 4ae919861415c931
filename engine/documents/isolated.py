"""The documents service as the desktop app uses it: quick SQLite reads in-process, the heavy
work (indexing, searching, deleting an index) in a child process.

Why: torch, sentence-transformers and chromadb hold the interpreter lock for up to ~300 ms at
a time while they import, so doing that in a pool thread of the GUI process froze the window
(bench/bench_gui.py measures it). A child process cannot stall our event loop. Searching keeps
one long-lived child (the embedder stays loaded); each sync runs in its own child, which ends
with it, and cancelling a sync kills its child: the index is built to survive exactly that
(one transaction per file, the vector index repaired from SQLite).
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

from engine import errors, workers
from engine.documents.events import IndexDone, IndexProgress
from engine.documents.library import CollectionInfo, DocumentLibrary, SearchResult
from engine.documents.retrieval import Hit
from engine.documents.store import DocumentRow
from engine.errors import HearthError

log = logging.getLogger(__name__)


class _Child:
    """One worker process; one request at a time."""

    def __init__(self, folder: Path) -> None:
        argv = workers.command("engine.documents.service_worker", str(folder))
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        log.info("documents worker started (pid %d)", self.proc.pid)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def request(self, request: dict[str, Any]) -> Iterator[tuple[str, Any]]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        for line in self.proc.stdout:
            msg = json.loads(line)
            if msg["kind"] == "end":
                return
            if msg["kind"] == "error":
                cls = getattr(errors, msg["data"]["type"], HearthError)
                if not (isinstance(cls, type) and issubclass(cls, HearthError)):
                    cls = HearthError
                raise cls(msg["data"]["message"], msg["data"]["detail"])
            yield msg["kind"], msg["data"]
        code = self.proc.wait()
        raise HearthError("The documents worker stopped unexpectedly.", f"exit status {code}")

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


class IsolatedLibrary:
    """DocumentLibrary's interface; `sync`, `search` and `delete` run in child processes."""

    def __init__(self, library: DocumentLibrary) -> None:
        self.local = library
        self.settings = library.settings
        self.folder = library.folder
        self._searcher: _Child | None = None
        self._search_lock = threading.Lock()

    # Quick SQLite reads and writes stay in this process.

    def create(self, name: str, paths: list[str] | None = None) -> CollectionInfo:
        return self.local.create(name, paths)

    def add(self, name: str, paths: list[str]) -> CollectionInfo:
        return self.local.add(name, paths)

    def remove_paths(self, name: str, paths: list[str]) -> CollectionInfo:
        return self.local.remove_paths(name, paths)

    def collections(self) -> list[CollectionInfo]:
        return self.local.collections()

    def info(self, name: str) -> CollectionInfo:
        return self.local.info(name)

    def documents(self, name: str) -> list[DocumentRow]:
        return self.local.documents(name)

    def set_embedder(self, name: str, model_id: str) -> CollectionInfo:
        return self.local.set_embedder(name, model_id)  # the sync child does the work

    def _request(self, op: str, **fields: Any) -> dict[str, Any]:
        return {"op": op, "settings": self.settings.as_dict(), **fields}

    def sync(self, name: str) -> Generator[IndexProgress | IndexDone, None, None]:
        """As DocumentLibrary.sync; closing the generator kills the child mid-sync."""
        child = _Child(self.folder)
        try:
            for kind, data in child.request(self._request("sync", name=name)):
                yield IndexProgress(**data) if kind == "IndexProgress" else IndexDone(**data)
        finally:
            child.kill()

    def search(
        self,
        name: str,
        query: str,
        *,
        top_k: int | None = None,
        min_score: float | None = None,
        mode: str = "hybrid",
    ) -> SearchResult:
        data = self._ask_searcher(
            self._request(
                "search", name=name, query=query, top_k=top_k, min_score=min_score, mode=mode
            )
        )
        return SearchResult([Hit(**h) for h in data["hits"]], data["mode"], data["notes"])

    def embed(self, texts: list[str]) -> tuple[Any, list[int]]:
        """As DocumentLibrary.embed, in the long-lived search child (its embedder is loaded)."""
        import numpy as np

        data = self._ask_searcher(self._request("embed", texts=texts))
        return np.asarray(data["vectors"], dtype=np.float32), list(data["tokens"])

    def _ask_searcher(self, request: dict[str, Any]) -> Any:
        """One request to the search child (started if need be); its one reply's data."""
        with self._search_lock:
            if self._searcher is None or not self._searcher.alive():
                self._searcher = _Child(self.folder)
            try:
                replies = list(self._searcher.request(request))  # read up to its "end"
            except HearthError:
                raise
            except BaseException:
                self._searcher.kill()  # out of step with its protocol now
                self._searcher = None
                raise
        if not replies:
            raise HearthError(f"The documents worker gave no answer to “{request['op']}”.")
        return replies[0][1]

    def delete(self, name: str) -> None:
        child = _Child(self.folder)
        try:
            for _ in child.request(self._request("delete", name=name)):
                pass
        finally:
            child.kill()

    def close(self) -> None:
        with self._search_lock:
            if self._searcher is not None:
                self._searcher.kill()
                self._searcher = None
