"""Find the files of a collection without leaving it.

Symbolic links are never followed: a link to something inside the collection would index it
twice, a link outside would leak files the user did not add, and a link to an ancestor would
loop. Each link is reported with its status instead. Folders are also remembered by device and
inode, so a loop made another way (bind mounts, junctions) ends too.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.documents.loaders import kind_for

SKIP_FOLDERS = frozenset(
    {"__pycache__", "node_modules", "$RECYCLE.BIN", "System Volume Information"}
)
MAX_DEPTH = 64


@dataclass(frozen=True)
class Found:
    """A file of the collection; `status` set when it was decided without reading it."""

    path: str
    kind: str | None
    size: int | None = None
    mtime_ns: int | None = None
    status: str | None = None  # None: to be read; else "skipped" or "failed"
    reason: str | None = None


def walk(sources: tuple[str, ...], max_bytes: int) -> Iterator[Found]:
    roots = [os.path.realpath(s) for s in sources]
    visited: set[tuple[int, int]] = set()
    for source in sources:
        try:
            st = os.lstat(source)
        except OSError as exc:
            yield Found(source, None, status="failed", reason=f"not found: {_why(exc)}")
            continue
        if stat.S_ISLNK(st.st_mode):
            yield from _link(source, roots, as_source=True, max_bytes=max_bytes)
        elif stat.S_ISDIR(st.st_mode):
            yield from _folder(source, roots, visited, 0, max_bytes)
        else:
            yield _file(source, st, max_bytes)


def _folder(
    folder: str, roots: list[str], visited: set[tuple[int, int]], depth: int, max_bytes: int
) -> Iterator[Found]:
    try:
        st = os.stat(folder)
    except OSError:
        return
    key = (st.st_dev, st.st_ino)
    if key in visited:
        return  # reached twice (a loop or an overlapping source): already walked
    visited.add(key)
    if depth > MAX_DEPTH:
        yield Found(folder, None, status="skipped", reason=f"nested deeper than {MAX_DEPTH}")
        return
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        yield Found(folder, None, status="failed", reason=f"folder could not be read: {_why(exc)}")
        return
    for entry in entries:
        if entry.name.startswith(".") or entry.name in SKIP_FOLDERS:
            continue
        try:
            est = entry.stat(follow_symlinks=False)
        except OSError as exc:
            yield Found(entry.path, kind_for(Path(entry.name)), status="failed", reason=_why(exc))
            continue
        if stat.S_ISLNK(est.st_mode):
            yield from _link(entry.path, roots, as_source=False, max_bytes=max_bytes)
        elif stat.S_ISDIR(est.st_mode):
            yield from _folder(entry.path, roots, visited, depth + 1, max_bytes)
        else:
            yield _file(entry.path, est, max_bytes)


def _file(path: str, st: os.stat_result, max_bytes: int) -> Found:
    kind = kind_for(Path(path))
    if not stat.S_ISREG(st.st_mode):
        return Found(path, kind, status="skipped", reason="not a regular file")
    size, mtime = st.st_size, st.st_mtime_ns
    if kind is None:
        ext = Path(path).suffix.lower() or "no extension"
        reason = f"file type not read ({ext})"
        return Found(path, kind, size, mtime, status="skipped", reason=reason)
    if st.st_size > max_bytes:
        reason = f"larger than {max_bytes // 2**20:,} MB"
        return Found(path, kind, size, mtime, status="skipped", reason=reason)
    if st.st_size == 0:
        return Found(path, kind, size, mtime, status="skipped", reason="empty file")
    return Found(path, kind, size, mtime)


def _link(path: str, roots: list[str], *, as_source: bool, max_bytes: int) -> Iterator[Found]:
    kind = kind_for(Path(path))
    try:
        target = os.path.realpath(path, strict=True)
        st = os.stat(path)
    except OSError as exc:
        reason = (
            "link loop"
            if exc.errno == errno.ELOOP or "loop" in str(exc).lower()
            else f"broken link ({_why(exc)})"
        )
        yield Found(path, kind, status="failed", reason=reason)
        return
    if as_source:  # the user chose this link: take what it points to
        if stat.S_ISDIR(st.st_mode):
            yield from _folder(path, [*roots, target], set(), 0, max_bytes)
        else:
            yield _file(path, st, max_bytes)
        return
    inside = any(target == r or target.startswith(r.rstrip(os.sep) + os.sep) for r in roots)
    if inside:
        what = "folder" if stat.S_ISDIR(st.st_mode) else "file"
        parent = os.path.realpath(os.path.dirname(path)) + os.sep
        above = what == "folder" and parent.startswith(target.rstrip(os.sep) + os.sep)
        reason = (
            f"link loop (points to a folder above it: {target})"
            if above
            else f"link to a {what} already in the collection ({target})"
        )
        yield Found(path, kind, status="skipped", reason=reason)
    else:
        yield Found(
            path,
            kind,
            status="skipped",
            reason=f"link to outside the collection, not followed ({target})",
        )


def _why(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    return exc.strerror or str(exc)
