"""Remember, across starts, that llama.cpp's fast CPU kernels crashed on this machine.

`ModelRuntime` loads a model on llama.cpp's plain kernels after a native crash in the first
answer (client.py). Without a memory, every start of the app would crash once more before it
answered. The file holds which llama.cpp build crashed, named by its libraries' names, sizes
and times (cheap to compare at every start, unlike a hash): a rebuilt or updated llama.cpp is
tried on its fast kernels again. Deleting the file does the same; `hearth doctor` names it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FILE_NAME = "llama-fast-kernels.json"


def build_key() -> str | None:
    """This llama.cpp's libraries by name, size and modification time; None without one."""
    from engine import llama_build

    lib = llama_build.library_folder()
    if lib is None or not lib.is_dir():
        return None
    digest = hashlib.sha256()
    for path in sorted(lib.glob("*")):
        if path.is_file() and not path.is_symlink():
            st = path.stat()
            digest.update(f"{path.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def remembered(path: Path) -> dict[str, Any] | None:
    """The crash on record for this llama.cpp build, or None (no file, another build, a file
    that cannot be read: the fast kernels are tried)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("build") != build_key():
        return None
    return record


def remember(path: Path, signal_name: str | None) -> None:
    """Record that the fast kernels crashed (written whole or not at all; a failure to write
    costs one more crash at the next start, never the answer)."""
    record = {
        "build": build_key(),
        "signal": signal_name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "plain_cpu_kernels": True,
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(record, fh, indent=2)
        os.replace(tmp, path)
    except OSError:
        log.warning("could not record the kernel crash in %s", path, exc_info=True)
