"""What the in-app viewer shows of a source: a PDF page drawn with boxes around the quote, or a
document's text with the quote's span. The work runs in a child process (`show`), like file
reading: a PDF that crashes or hangs the renderer takes the child down, not the window.

The quote is found where the index says it is (its character span) when the file is unchanged,
and otherwise searched for ignoring whitespace, so a re-flowed or edited file still shows it if
the words are there; `found` says whether they were.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import DocumentError

SCALE = 1.5  # 108 dpi: a page fits a laptop screen's width and small print stays readable
TIMEOUT_S = 30
MEMORY_MB = 1024


@dataclass(frozen=True)
class PageImage:
    page: int  # 1-based
    pages: int
    png: bytes
    width: int
    height: int
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)  # x0, y0, x1, y1 px
    found: bool = False


@dataclass(frozen=True)
class TextSpan:
    text: str
    start: int
    end: int
    found: bool


def locate(text: str, quote: str, hint: int | None = None) -> tuple[int, int] | None:
    """Where `quote` is in `text`, whitespace ignored: at `hint` if it is there, else the
    first place."""
    if not quote.strip():
        return None
    if hint is not None and text[hint : hint + len(quote)] == quote:
        return hint, hint + len(quote)
    kept = [i for i, ch in enumerate(text) if not ch.isspace()]
    squeezed = "".join(text[i] for i in kept)
    needle = re.sub(r"\s+", "", quote)
    at = squeezed.find(needle)
    if at < 0:
        return None
    return kept[at], kept[at + len(needle) - 1] + 1


def pdf_page(path: str, page: int, quote: str, scale: float = SCALE) -> PageImage:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(path)
    try:
        pages = len(pdf)
        page = min(max(page, 1), pages)
        pdf_page = pdf[page - 1]
        height_pt = pdf_page.get_height()
        image = pdf_page.render(scale=scale).to_pil()
        out = io.BytesIO()
        image.save(out, "PNG")
        textpage = pdf_page.get_textpage()
        span = locate(textpage.get_text_range(), quote)
        boxes = []
        if span is not None:
            start, end = span
            for i in range(textpage.count_rects(start, end - start)):
                left, bottom, right, top = textpage.get_rect(i)
                boxes.append(
                    (
                        round(left * scale),
                        round((height_pt - top) * scale),
                        round(right * scale),
                        round((height_pt - bottom) * scale),
                    )
                )
        return PageImage(
            page, pages, out.getvalue(), image.width, image.height, boxes, span is not None
        )
    finally:
        pdf.close()


def document_text(path: str, quote: str, char_start: int | None) -> TextSpan:
    from engine.documents import loaders

    kind = loaders.kind_for(Path(path))
    if kind is None:
        raise DocumentError(f"Hearth does not read files like “{Path(path).name}”.")
    try:
        text = loaders.load(Path(path), kind).text
    except (loaders.Skip, loaders.Fail) as exc:
        raise DocumentError(f"“{Path(path).name}” cannot be read now: {exc}") from None
    span = locate(text, quote, char_start)
    if span is None:
        return TextSpan(text, 0, 0, False)
    return TextSpan(text, span[0], span[1], True)


# -- the child process ------------------------------------------------------------------------


def show(request: dict[str, Any], timeout_s: float = TIMEOUT_S) -> PageImage | TextSpan:
    """Run `request` ({"kind": "pdf"|"text", "path", "quote", "page"|"char_start"}) in a
    child process. Raises DocumentError when the file cannot be shown."""
    from engine import workers

    name = Path(str(request.get("path"))).name
    try:
        done = subprocess.run(
            workers.command("engine.documents.source_view"),
            input=json.dumps(request).encode(),
            capture_output=True,
            timeout=timeout_s,
            env={**os.environ, "HEARTH_VIEW_MEMORY_MB": str(MEMORY_MB)},
        )
    except subprocess.TimeoutExpired:
        raise DocumentError(f"“{name}” took too long to draw; it was stopped.") from None
    if done.returncode != 0 or not done.stdout:
        raise DocumentError(
            f"“{name}” could not be shown (the viewer stopped, exit {done.returncode})."
        )
    reply = json.loads(done.stdout)
    if "error" in reply:
        raise DocumentError(reply["error"])
    if reply["kind"] == "pdf":
        reply["png"] = base64.b64decode(reply["png"])
        reply["boxes"] = [tuple(b) for b in reply["boxes"]]
        return PageImage(**{k: v for k, v in reply.items() if k != "kind"})
    return TextSpan(**{k: v for k, v in reply.items() if k != "kind"})


def _handle(request: dict[str, Any]) -> dict[str, Any]:
    path, quote = str(request["path"]), str(request.get("quote") or "")
    try:
        if request["kind"] == "pdf":
            image = pdf_page(path, int(request.get("page") or 1), quote)
            reply: dict[str, Any] = {"kind": "pdf", **image.__dict__}
            reply["png"] = base64.b64encode(image.png).decode("ascii")
            return reply
        return {"kind": "text", **document_text(path, quote, request.get("char_start")).__dict__}
    except DocumentError as exc:
        return {"error": exc.user_message}
    except Exception as exc:  # a damaged file: say so rather than die with a traceback
        return {"error": f"“{Path(path).name}” could not be shown: {type(exc).__name__}: {exc}"}


def main() -> None:
    from engine import network

    network.install("viewer")  # before anything else is imported or read
    from engine.documents.parse_worker import limit_memory

    limit_memory(int(os.environ.get("HEARTH_VIEW_MEMORY_MB", str(MEMORY_MB))))
    request = json.loads(sys.stdin.buffer.read())
    sys.stdout.write(json.dumps(_handle(request), ensure_ascii=True))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
