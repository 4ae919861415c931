"""The child process that does the documents' heavy work: indexing, searching, embedding,
deleting an index. It imports torch, sentence-transformers and chromadb, whose imports hold the
interpreter lock for hundreds of milliseconds at a time; in the app's own process that froze
the window (see bench/bench_gui.py). One JSON request per line on stdin; JSON event lines on
the original stdout (stdout itself goes to stderr, so nothing a library prints can corrupt the
protocol)."""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

from engine.errors import HearthError


def _send(out: IO[str], kind: str, data: Any = None) -> None:
    out.write(json.dumps({"kind": kind, "data": data}, default=str) + "\n")
    out.flush()


def _settings(values: dict[str, Any]) -> Any:
    from engine.settings import Settings

    settings = Settings.load(None)
    for key, value in values.items():
        settings.set(key, value)
    return settings


def serve(folder: Path, requests: IO[str], out: IO[str]) -> None:
    from engine.documents.library import DocumentLibrary

    library: DocumentLibrary | None = None
    for line in requests:
        request = json.loads(line)
        settings = _settings(request.get("settings", {}))
        if library is None:
            library = DocumentLibrary(folder, settings)
        library.settings = settings
        try:
            op = request["op"]
            if op == "sync":
                for event in library.sync(request["name"]):
                    _send(out, type(event).__name__, asdict(event))
            elif op == "search":
                result = library.search(
                    request["name"],
                    request["query"],
                    top_k=request.get("top_k"),
                    min_score=request.get("min_score"),
                    mode=request.get("mode", "hybrid"),
                )
                _send(
                    out,
                    "SearchResult",
                    {
                        "hits": [asdict(h) for h in result.hits],
                        "mode": result.mode,
                        "notes": result.notes,
                    },
                )
            elif op == "embed":
                vectors, counts = library.embed(list(request["texts"]))
                _send(out, "Embedded", {"vectors": vectors.tolist(), "tokens": counts})
            elif op == "delete":
                library.delete(request["name"])
            else:
                raise ValueError(f"unknown request {op!r}")
            _send(out, "end")
        except HearthError as exc:
            _send(
                out,
                "error",
                {"type": type(exc).__name__, "message": exc.user_message, "detail": exc.detail},
            )
        except Exception as exc:  # a bug: report it rather than leave the app waiting
            logging.getLogger(__name__).exception("documents worker request failed")
            _send(
                out,
                "error",
                {
                    "type": "HearthError",
                    "message": f"Unexpected error in the documents worker: "
                    f"{type(exc).__name__}: {exc}",
                    "detail": None,
                },
            )


def main() -> None:
    from engine import network

    network.install("documents worker")
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    sys.stdout = sys.stderr
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="hearth documents worker: %(levelname)s: %(message)s",
    )
    args = [a for a in sys.argv[1:] if not a.startswith("--hearth-")]
    serve(Path(args[0]), sys.stdin, out)


if __name__ == "__main__":
    main()
