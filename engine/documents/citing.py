"""How a passage's place in its file is written, the same wherever a source is shown: the CLI,
the window, chat exports. Plain text, no dependencies, so the window can import it cheaply."""

from __future__ import annotations


def place(page: int | None, line_start: object, line_end: object, ocr: bool = False) -> str:
    """ "page 3", or "lines 10-24" for formats without pages; "· OCR" follows a page whose text
    was recognised from its image (a scanned page: the words may hold recognition errors)."""
    where = f"page {page}" if page else f"lines {line_start}-{line_end}"
    return f"{where} · OCR" if ocr else where
