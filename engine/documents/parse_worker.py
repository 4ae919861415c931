"""The process that reads untrusted files (run as ``python -m engine.documents.parse_worker``).

A PDF or DOCX parser can loop, allocate without bound or crash on a hostile file. Here that
costs one child process: the parent (`parsing.FileParser`) enforces a timeout and restarts us,
and the memory cap below turns a runaway allocation into a MemoryError we report, or at worst
a dead child. Requests and results are JSON lines on stdin/stdout; no pickle, so a subverted
child cannot hand the app code to run. A long read (OCR of a scanned PDF) also writes progress
lines, `{"id": …, "progress": "OCR: page 3 of 40"}`, before its result.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def limit_memory(megabytes: int) -> None:
    """Cap the address space (POSIX). Windows has no RLIMIT_AS: there the parent's timeout and
    the child's isolation remain."""
    try:
        import resource
    except ImportError:
        return
    cap = megabytes * 1024 * 1024
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def handle(
    request: dict[str, Any], progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Read one file; `progress` hears how far a long read (OCR) has come."""
    from engine.documents import loaders

    path = Path(request["path"])
    options = loaders.Options(ocr=bool(request.get("ocr", True)), progress=progress)
    try:
        extracted = loaders.load(path, request["kind"], options)
    except loaders.Skip as exc:
        return {"status": "skipped", "reason": str(exc)}
    except loaders.Fail as exc:
        return {"status": "failed", "reason": str(exc)}
    except MemoryError:
        return {
            "status": "failed",
            "reason": f"needed more than {request.get('memory_mb', '?')} MB to read",
        }
    except PermissionError:
        return {"status": "failed", "reason": "permission denied"}
    except OSError as exc:
        return {"status": "failed", "reason": f"could not read: {exc.strerror or exc}"}
    except RecursionError:
        return {"status": "failed", "reason": "structure nested too deeply to read"}
    except Exception as exc:  # a parser bug on a hostile file must not end the batch
        return {
            "status": "failed",
            "reason": f"could not be read ({type(exc).__name__}: {str(exc)[:160]})",
        }
    return {"status": "ok", **extracted.as_dict()}


def _progress(send: Callable[[dict[str, Any]], None], req_id: Any, text: str) -> None:
    send({"id": req_id, "progress": text})


def main() -> None:
    from engine import network

    network.install("file reader")
    memory_mb = int(os.environ.get("HEARTH_PARSE_MEMORY_MB", "2048"))
    limit_memory(memory_mb)
    out = sys.stdout.buffer

    def send(message: dict[str, Any]) -> None:
        # ASCII escapes: a lone surrogate from a broken PDF string cannot break the pipe.
        out.write(json.dumps(message).encode("ascii") + b"\n")
        out.flush()

    for line in sys.stdin.buffer:
        request = json.loads(line)
        request["memory_mb"] = memory_mb
        req_id = request["id"]
        result = handle(request, functools.partial(_progress, send, req_id))
        result["id"] = req_id
        send(result)


if __name__ == "__main__":
    main()
