"""Writing and copying files so that a crash, a full disk or a cancel never leaves half a file
where a whole one is expected: write beside the target under a temporary name, fsync, rename."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.errors import NotEnoughSpace
from engine.units import size_text

BLOCK = 8 * 1024 * 1024
SPACE_MARGIN = 32 * 1024 * 1024  # room for the registry, logs and the filesystem's own needs


def write_atomic(path: Path, data: bytes | str) -> None:
    """Replace `path` with `data` whole (text is written as UTF-8). The folder must exist."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def copy(source: Path, target: Path, digest: Any = None) -> Iterator[int]:
    """Copy `source` to `target`, yielding the bytes copied so far after each block and
    feeding every block to `digest` (a hashlib object) when given, so the copy is hashed
    without a second read. `target` appears only when the copy is complete; if the copy fails
    or the generator is closed (the user cancelled), the partial file is removed."""
    tmp = target.with_name(f".{target.name}.partial")
    done = 0
    try:
        with source.open("rb") as src, tmp.open("wb") as out:
            while block := src.read(BLOCK):
                out.write(block)
                if digest is not None:
                    digest.update(block)
                done += len(block)
                yield done
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def unused_path(folder: Path, name: str) -> Path:
    """`folder/name`, or `folder/stem-2.suffix`, `-3`… : the first that does not exist."""
    target, n = folder / name, 2
    stem, suffix = Path(name).stem, Path(name).suffix
    while target.exists():
        target = folder / f"{stem}-{n}{suffix}"
        n += 1
    return target


def sha256_file(path: Path, chunk: int = 4 * 1024 * 1024) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def size_of(path: Path) -> int:
    """Bytes in a file, or in every file under a folder."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def check_space(folder: Path, still_needed: int, size: int) -> None:
    """Raise NotEnoughSpace unless `folder` can take `still_needed` more bytes and a margin
    (`size` is the whole file's, for the message)."""
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < still_needed + SPACE_MARGIN:
        raise NotEnoughSpace(
            f"Not enough disk space: the model needs {size_text(still_needed)} more and "
            f"{folder} has {size_text(free)} free. Nothing was downloaded or copied.",
            f"size {size}, still needed {still_needed}, free {free}",
        )


def readable_name(name: str) -> str:
    """A file name as text a tokenizer, a prompt or a label can take. On Linux a name is
    bytes; one that is not UTF-8 reaches Python with lone surrogates (surrogateescape), which
    tokenizers and UTF-8 encoders refuse. Such bytes are read as Windows-1252 (where names
    like "caf\\xe9.txt" usually come from), else replaced with U+FFFD."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        pass
    raw = name.encode("utf-8", "surrogateescape") if _only_escapes(name) else None
    if raw is not None:
        try:
            return raw.decode("cp1252")
        except UnicodeDecodeError:
            return raw.decode("utf-8", "replace")
    return name.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def _only_escapes(text: str) -> bool:
    """True when every surrogate in `text` is one surrogateescape made (U+DC80..U+DCFF)."""
    return all(not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF for c in text)
