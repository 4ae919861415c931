"""The process that reads untrusted files (run as ``python -m engine.documents.parse_worker``).

A PDF or DOCX parser can loop, allocate without bound or crash on a hostile file. Here that
costs one child process: the parent (`parsing.FileParser`) enforces a timeout and restarts us,
and the memory cap below turns a runaway allocation into a MemoryError we report, or at worst
a dead child. Requests and results are JSON lines on stdin/stdout; no pickle, so a subverted
child cannot hand the app code to run.
"""

from __future__ import annotations

import json
import os
import sys
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


def handle(request: dict[str, Any]) -> dict[str, Any]:
    from engine.documents import loaders

    path = Path(request["path"])
    try:
        extracted = loaders.load(path, request["kind"])
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


def main() -> None:
    from engine import network

    network.install("file reader")
    memory_mb = int(os.environ.get("HEARTH_PARSE_MEMORY_MB", "2048"))
    limit_memory(memory_mb)
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        request = json.loads(line)
        request["memory_mb"] = memory_mb
        result = handle(request)
        result["id"] = request["id"]
        # ASCII escapes: a lone surrogate from a broken PDF string cannot break the pipe.
        out.write(json.dumps(result).encode("ascii") + b"\n")
        out.flush()


if __name__ == "__main__":
    main()
