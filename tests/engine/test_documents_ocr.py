"""Scanned PDFs read by OCR, on real scans: real prose set in a real TrueType font, drawn to
images at 200 dpi and turned 2 degrees, saved as PDF pages by Pillow, beside a page with a real
text layer from reportlab. Then read by the real loader, in the real parse worker, through the
real indexer and embedder."""

from __future__ import annotations

import bisect
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from engine.documents import loaders, ocr
from engine.documents.embedder import Embedder
from engine.documents.events import IndexDone, IndexProgress
from engine.documents.library import DocumentLibrary
from engine.documents.parsing import FileParser
from tests import doc_files
from tests.engine.test_documents_index import library

ROOT = Path(__file__).resolve().parents[2]
PROSE = doc_files.real_prose(10)  # the preamble
TYPED = "Typed page. The vault code word is PELICAN and it changes every Tuesday."


def words(text: str) -> str:
    return " ".join(text.split())


def page_of(extracted: loaders.Extracted, needle: str) -> int:
    found = re.search(r"\s+".join(map(re.escape, needle.split())), extracted.text)
    assert found is not None, needle
    return bisect.bisect_right(extracted.pages, found.start())


@pytest.fixture(scope="module")
def mixed_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Page 1 scanned, page 2 typed (a text layer), page 3 scanned."""
    folder = tmp_path_factory.mktemp("mixed")
    scan1 = doc_files.make_image_pdf(
        folder / "scan1.pdf", [doc_files.scan_page(PROSE[:5], angle=2)]
    )
    typed = doc_files.make_pdf(folder / "typed.pdf", [TYPED])
    scan3 = doc_files.make_image_pdf(
        folder / "scan3.pdf", [doc_files.scan_page(PROSE[5:], angle=2)]
    )
    return doc_files.join_pdfs(folder / "mixed.pdf", [scan1, typed, scan3])


@pytest.fixture(scope="module")
def read_mixed(mixed_pdf: Path) -> loaders.Extracted:
    return loaders.load(mixed_pdf, "pdf")


def test_scanned_pages_are_read_in_order_and_keep_their_page_numbers(
    read_mixed: loaders.Extracted,
) -> None:
    ex = read_mixed
    assert ex.ocr_pages == [1, 3]
    assert len(ex.pages) == 3
    text = words(ex.text)
    # Whole sentences come back word for word, in reading order, on their own page.
    first = "Developers that use the GNU GPL protect your rights with two steps"
    assert first in text and page_of(ex, first) == 3
    second = "The licenses for most software and other practical works are designed"
    assert second in text and page_of(ex, second) == 1
    assert text.index("GNU General Public License is a free, copyleft license") < text.index(second)
    assert page_of(ex, "vault code word is PELICAN") == 2
    assert ex.note == "2 of 3 pages read by OCR"


def test_ocr_off_keeps_the_text_pages_and_says_why_the_rest_is_missing(
    mixed_pdf: Path, tmp_path: Path
) -> None:
    ex = loaders.load(mixed_pdf, "pdf", loaders.Options(ocr=False))
    assert ex.ocr_pages == []
    assert words(ex.text) == TYPED
    assert ex.note == "2 of 3 pages have no text layer (OCR is off in the settings)"
    only_scans = doc_files.make_image_pdf(tmp_path / "s.pdf", [doc_files.scan_page(PROSE[:1])])
    with pytest.raises(loaders.Skip, match=r"no text layer \(OCR is off in the settings\)"):
        loaders.load(only_scans, "pdf", loaders.Options(ocr=False))


def test_without_the_ocr_packages_text_pages_still_index_and_the_note_says_so(
    mixed_pdf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ocr._engine.cache_clear()
    monkeypatch.setitem(sys.modules, "rapidocr", None)  # `import rapidocr` raises ImportError
    try:
        ex = loaders.load(mixed_pdf, "pdf")
        assert words(ex.text) == TYPED and ex.ocr_pages == []
        assert ex.note is not None
        assert ex.note.startswith("2 of 3 pages have no text layer (OCR not available: ")
        assert "the OCR packages could not be loaded" in ex.note
        only_scans = doc_files.make_image_pdf(tmp_path / "s.pdf", [doc_files.scan_page(PROSE[:1])])
        with pytest.raises(loaders.Skip, match=r"no text layer \(OCR not available: "):
            loaders.load(only_scans, "pdf")
    finally:
        ocr._engine.cache_clear()


def test_a_damaged_image_fails_its_page_and_the_others_are_read(tmp_path: Path) -> None:
    pdf = doc_files.make_image_pdf(
        tmp_path / "scan.pdf",
        [doc_files.scan_page(PROSE[:2], angle=2), doc_files.scan_page(PROSE[2:4], angle=2)],
    )
    data = bytearray(pdf.read_bytes())
    second_image = [m.start() for m in re.finditer(rb"/Subtype /Image", data)][1]
    start = data.index(b"stream\n", second_image) + len(b"stream\n")
    data[start + 2 : start + 402] = bytes(range(256)) + bytes(144)  # JPEG tables overwritten
    pdf.write_bytes(bytes(data))

    ex = loaders.load(pdf, "pdf")
    assert ex.ocr_pages == [1]
    assert "The GNU General Public License is a free, copyleft license" in words(ex.text)
    assert ex.note == (
        "1 of 2 pages read by OCR; OCR could not read page 2: "
        "1 damaged image(s) could not be decoded"
    )


def test_a_200_inch_page_is_drawn_within_the_pixel_cap(tmp_path: Path) -> None:
    """PDF's largest page, 200 x 200 inches, is 1.6 billion pixels at 200 dpi: it is drawn at
    the pixel cap instead, and its (very large) words are still read."""
    import pypdfium2 as pdfium
    from PIL import Image, ImageDraw, ImageFont
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    notice = Image.new("L", (900, 300), 255)
    font = ImageFont.truetype(str(doc_files.SCAN_FONT), 60)
    ImageDraw.Draw(notice).text((40, 110), "Giant poster notice", font=font, fill=0)
    path = tmp_path / "poster.pdf"
    side = 200 * 72
    c = canvas.Canvas(str(path), pagesize=(side, side))
    c.drawImage(ImageReader(notice), 0, side / 3, width=side, height=side / 3)
    c.showPage()
    c.save()

    pdf = pdfium.PdfDocument(str(path))
    try:
        pixels = ocr.render(pdf[0])
    finally:
        pdf.close()
    assert pixels.size <= ocr.MAX_PIXELS
    assert pixels.shape[0] == pixels.shape[1] >= 1990  # scaled down, not to a thumbnail
    ex = loaders.load(path, "pdf")
    assert ex.ocr_pages == [1] and "Giant poster notice" in ex.text


def test_reading_order_columns_and_skew() -> None:
    """Boxes as the detector gives them (corners clockwise from the top left), turned 2
    degrees as a crooked scan is: a title across the page, two columns under it."""
    import math

    def box(x: float, y: float, w: float, h: float = 30) -> list[list[float]]:
        t = math.radians(2)
        corners = [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
        return [
            [cx * math.cos(t) - cy * math.sin(t), cx * math.sin(t) + cy * math.cos(t)]
            for cx, cy in corners
        ]

    items = [
        (box(100, 100, 800), "A title across both columns"),
        (box(100, 200, 350), "left one"),
        (box(100, 235, 350), "left two"),
        (box(100, 300, 350), "left three, after a paragraph break"),
        (box(550, 200, 350), "right one"),
        (box(550, 235, 170), "right two"),
        (box(740, 236, 160), "same line"),
        (box(550, 270, 350), "right three"),
        (box(550, 305, 350), "right four"),
    ]
    text = ocr.layout([p for p, _ in items[::-1]], [t for _, t in items[::-1]])
    assert text == (
        "A title across both columns\n\n"
        "left one\nleft two\n\nleft three, after a paragraph break\n\n"
        "right one\nright two same line\nright three\nright four"
    )


# -- offline ------------------------------------------------------------------------------------

# What can reach another machine. (Not socket creation: urllib3, which rapidocr imports through
# requests, binds a socket to ::1 at import to learn whether IPv6 works; it sends nothing.)
PROBE = """
import json, sys
from pathlib import Path
from engine.network import _SOCKET_EVENTS
events = []
sys.addaudithook(lambda event, args: events.append(event) if event in _SOCKET_EVENTS else None)
if sys.argv[1] == "control":
    import socket
    try:
        socket.create_connection(("192.0.2.1", 9), timeout=0.01)  # TEST-NET-1: never answers
    except OSError:
        pass
from engine.documents import loaders
ex = loaders.load(Path(sys.argv[2]), "pdf")
print(json.dumps({"events": sorted(set(events)), "ocr_pages": ex.ocr_pages}))
"""


def _models() -> set[Path]:
    import rapidocr

    return set((Path(rapidocr.__file__).parent / "models").iterdir())


@pytest.mark.slow
def test_ocr_loads_its_models_from_the_wheel_and_opens_no_socket(tmp_path: Path) -> None:
    pdf = doc_files.make_image_pdf(tmp_path / "s.pdf", [doc_files.scan_page(PROSE[:2])])
    models = _models()
    results = {}
    for mode in ("control", "ocr"):
        run = subprocess.run(
            [sys.executable, "-c", PROBE, mode, str(pdf)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert run.returncode == 0, run.stderr[-2000:]
        results[mode] = json.loads(run.stdout.splitlines()[-1])
    assert "socket.connect" in results["control"]["events"]  # the probe sees sockets
    assert results["ocr"] == {"events": [], "ocr_pages": [1]}
    assert _models() == models  # nothing fetched into the wheel's folder either


# -- through the parse worker and the indexer -------------------------------------------------


def test_each_ocr_page_gets_its_own_time_budget(tmp_path: Path) -> None:
    """Twelve small scanned pages take longer than the timeout together, each far less: the
    file is read, where one budget for the whole file would have failed it. The budget is set
    from one page read here (four pages' worth), so the test holds on a fast or a slow CPU."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(doc_files.SCAN_FONT), 30)
    slips = []
    for i in range(12):
        slip = Image.new("L", (600, 200), 255)
        ImageDraw.Draw(slip).text((40, 60), f"Slip number {i + 1} of the stack", font=font, fill=0)
        slips.append(slip)
    pdf = doc_files.make_image_pdf(tmp_path / "slips.pdf", slips, dpi=100)
    one = doc_files.make_image_pdf(tmp_path / "one.pdf", slips[:1], dpi=100)
    seen: list[str] = []
    with FileParser(timeout_s=120) as parser:
        assert parser.parse(one, "pdf", lambda _: None).status == "ok"  # OCR models load
        t0 = time.monotonic()
        assert parser.parse(one, "pdf", lambda _: None).status == "ok"
        parser.timeout_s = timeout = max(0.2, 4 * (time.monotonic() - t0))
        t0 = time.monotonic()
        result = parser.parse(pdf, "pdf", seen.append)
        elapsed = time.monotonic() - t0
    assert result.status == "ok", result.reason
    assert result.ocr_pages == list(range(1, 13))
    assert "Slip number 12 of the stack" in result.text
    assert elapsed > timeout, "the control: the pages together outlast one budget"
    assert seen[0] == "OCR: page 1 of 12" and seen[-1] == "OCR: 12 pages"


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


def sync(lib: DocumentLibrary, name: str) -> list[IndexProgress | IndexDone]:
    events = list(lib.sync(name))
    assert isinstance(events[-1], IndexDone)
    return events


@pytest.mark.slow
def test_indexed_scan_is_found_by_its_words_on_its_page_and_marked_ocr(
    mixed_pdf: Path, tmp_path: Path, embedder: Embedder
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "mixed.pdf").write_bytes(mixed_pdf.read_bytes())
    # First with OCR off (or, the same, from a Hearth without OCR): the typed page only.
    off = library(tmp_path / "index", embedder, **{"documents.ocr": False})
    off.create("scans", [str(docs)])
    sync(off, "scans")
    (row,) = off.documents("scans")
    assert row.reason == "2 of 3 pages have no text layer (OCR is off in the settings)"
    assert off.info("scans").counts["chunks"] == 1

    # OCR on: the unchanged file is read again, this time with its scanned pages.
    lib = library(tmp_path / "index", embedder)
    events = sync(lib, "scans")
    details = [e.detail for e in events if isinstance(e, IndexProgress) and e.detail]
    assert "OCR: page 1 of 2" in details  # the window and the CLI show how far a scan is
    (row,) = lib.documents("scans")
    assert (row.status, row.pages, row.reason) == ("indexed", 3, "2 of 3 pages read by OCR")

    def found(phrase: str, part: str) -> Any:
        # A phrase from the scan, as a user who remembers its words would type it: the word
        # index ranks the passage that holds it first (the meaning of licence prose is too
        # alike from passage to passage for the embedder to single one out).
        hits = lib.search("scans", phrase, mode="bm25", min_score=0.0).hits
        # (OCR is not perfect: "no warranty" once came back as "nowarranty"; the phrase's
        # other words still find it.)
        assert hits and part in words(hits[0].text), [words(h.text)[:80] for h in hits]
        return hits[0]

    hit = found("the GPL clearly explains that there is no warranty", "clearly explains that")
    assert (hit.page, hit.ocr) == (3, True)
    hit = found("designed to take away your freedom to share", "take away your freedom")
    assert (hit.page, hit.ocr) == (1, True)
    hit = lib.search("scans", "What is the vault code word?").hits[0]
    assert "PELICAN" in hit.text and (hit.page, hit.ocr) == (2, False)

    again = sync(lib, "scans")[-1]  # read with OCR now: not read again
    assert isinstance(again, IndexDone) and (again.unchanged, again.indexed) == (1, 0)
