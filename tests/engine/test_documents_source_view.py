"""What the in-app viewer is given: a real PDF page drawn in a child process with boxes on the
quote, a DOCX's text with the quote's span, and clear errors for a damaged or changed file."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from engine.documents import source_view
from engine.errors import DocumentError
from tests import doc_files
from tests.app.test_cli_docs import PAGES, make_docs

QUOTE = "Security. The vault code word is PELICAN. It is changed every Tuesday."


def test_a_pdf_page_is_drawn_with_the_quote_boxed(tmp_path: Path) -> None:
    from PIL import Image

    docs = make_docs(tmp_path / "docs")
    shown = source_view.show(
        {"kind": "pdf", "path": str(docs / "report.pdf"), "page": 3, "quote": QUOTE}
    )
    assert isinstance(shown, source_view.PageImage)
    assert (shown.page, shown.pages, shown.found) == (3, 3, True)
    image = Image.open(io.BytesIO(shown.png))
    assert image.size == (shown.width, shown.height)
    assert shown.boxes
    for x0, y0, x1, y1 in shown.boxes:
        assert 0 <= x0 < x1 <= shown.width and 0 <= y0 < y1 <= shown.height
        # the box holds ink: the quote's text is drawn there
        assert image.convert("L").crop((x0, y0, x1, y1)).getextrema()[0] < 128
    other = source_view.pdf_page(str(docs / "report.pdf"), 1, QUOTE)
    assert (other.page, other.found, other.boxes) == (1, False, [])


def test_a_docx_quote_is_found_at_its_span_or_by_its_words(tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs")
    quote = "Hotels are paid up to 150 euros per night."
    found = source_view.show(
        {"kind": "text", "path": str(docs / "policy.docx"), "quote": quote, "char_start": None}
    )
    assert isinstance(found, source_view.TextSpan) and found.found
    assert found.text[found.start : found.end] == quote
    at_span = source_view.document_text(str(docs / "policy.docx"), quote, found.start)
    assert (at_span.start, at_span.end) == (found.start, found.end)
    flowed = "Hotels are\n  paid up to 150\neuros per night."
    assert source_view.locate(flowed, quote) == (0, len(flowed))
    gone = source_view.document_text(str(docs / "policy.docx"), "Not in this file.", None)
    assert not gone.found


def test_a_damaged_pdf_or_a_missing_file_is_an_error_not_a_crash(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.4\n" + b"\x00garbage" * 100)
    with pytest.raises(DocumentError, match=r"bad\.pdf"):
        source_view.show({"kind": "pdf", "path": str(bad), "page": 1, "quote": "x"})
    with pytest.raises(DocumentError, match=r"gone\.docx"):
        source_view.show({"kind": "text", "path": str(tmp_path / "gone.docx"), "quote": "x"})
    changed = tmp_path / "report.pdf"
    doc_files.make_pdf(changed, [*PAGES[:2], "Security. The vault is gone."])
    shown = source_view.show({"kind": "pdf", "path": str(changed), "page": 3, "quote": QUOTE})
    assert not shown.found and not shown.boxes
