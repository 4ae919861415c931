"""Open a source file for the user, at its page where the platform's viewer allows it."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QProcess, QUrl
from PySide6.QtGui import QDesktopServices

# PDF viewers that take a page on the command line: (program, arguments before the file).
PDF_VIEWERS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "linux": (
        ("evince", ("-p", "{page}")),
        ("okular", ("-p", "{page}")),
        ("zathura", ("-P", "{page}")),
        ("atril", ("-p", "{page}")),
        ("xreader", ("-p", "{page}")),
    ),
    "win32": (("SumatraPDF", ("-page", "{page}")),),
}


def open_command(
    path: str,
    page: int | None,
    platform: str = sys.platform,
    which: Callable[[str], str | None] = shutil.which,
) -> list[str] | None:
    """The command that opens `path` at `page`, or None to let the desktop pick a viewer
    (which then opens the file at its start)."""
    if not page or Path(path).suffix.lower() != ".pdf":
        return None
    key = "linux" if platform.startswith(("linux", "freebsd")) else platform
    for program, args in PDF_VIEWERS.get(key, ()):
        found = which(program)
        if found:
            return [found, *(a.format(page=page) for a in args), path]
    return None


class NoViewer(Exception):
    """Nothing on this computer opens the file (the desktop has no application for it)."""


def open_source(path: str, page: int | None) -> str:
    """Open the file without waiting on the viewer; returns how it was opened. Raises
    FileNotFoundError, or NoViewer when the desktop says nothing could open it."""
    if not Path(path).exists():
        raise FileNotFoundError(path)
    command = open_command(path, page)
    if command and QProcess.startDetached(command[0], command[1:])[0]:
        return f"{Path(command[0]).name} at page {page}"
    if not QDesktopServices.openUrl(QUrl.fromLocalFile(path)):
        raise NoViewer(path)
    return "the default application"
