"""Loaders on real files: text, pages and headings come out right; bad files say why."""

from __future__ import annotations

import bisect
import json
from pathlib import Path

import pytest

from engine.documents import loaders
from engine.documents.loaders import Fail, Skip
from tests import doc_files


def page_of(extracted: loaders.Extracted, needle: str) -> int:
    return bisect.bisect_right(extracted.pages, extracted.text.index(needle))


def heading_of(extracted: loaders.Extracted, needle: str) -> str:
    offsets = [o for o, _ in extracted.headings]
    return extracted.headings[bisect.bisect_right(offsets, extracted.text.index(needle)) - 1][1]


def test_pdf_text_keeps_its_page_numbers(tmp_path: Path) -> None:
    pdf = doc_files.make_pdf(
        tmp_path / "r.pdf", ["Alpha page one.", "Bravo page two.", "Charlie page three."]
    )
    ex = loaders.load(pdf, "pdf")
    assert ex.kind == "pdf" and len(ex.pages) == 3
    assert [page_of(ex, w) for w in ("Alpha", "Bravo", "Charlie")] == [1, 2, 3]


def test_pdf_of_drawings_without_text_is_skipped_with_the_reason(tmp_path: Path) -> None:
    pdf = doc_files.make_scanned_pdf(tmp_path / "scan.pdf")
    with pytest.raises(Skip, match=r"no text layer, and OCR found no text"):
        loaders.load(pdf, "pdf")
    with pytest.raises(Skip, match=r"no text layer \(OCR is off in the settings\)"):
        loaders.load(pdf, "pdf", loaders.Options(ocr=False))


def test_encrypted_pdf_needs_a_password(tmp_path: Path) -> None:
    plain = doc_files.make_pdf(tmp_path / "p.pdf", ["Secret salaries."])
    locked = doc_files.make_encrypted_pdf(tmp_path / "locked.pdf", plain)
    with pytest.raises(Skip, match="password"):
        loaders.load(locked, "pdf")


def test_truncated_pdf_fails_or_reads_what_is_there(tmp_path: Path) -> None:
    pdf = doc_files.make_pdf(tmp_path / "t.pdf", [f"Page {i} text." for i in range(5)])
    doc_files.truncate(pdf, 0.3)
    with pytest.raises((Fail, Skip)):
        loaders.load(pdf, "pdf")


def test_docx_headings_tables_and_page_breaks(tmp_path: Path) -> None:
    path = doc_files.make_docx(
        tmp_path / "d.docx",
        [("Leave", ["Staff get 25 days of leave."]), ("Expenses", ["Taxis need a receipt."])],
        page_break_between=True,
        table=[["Item", "Limit"], ["Hotel", "150 euros"]],
    )
    ex = loaders.load(path, "docx")
    assert page_of(ex, "25 days") == 1 and page_of(ex, "Taxis") == 2
    assert heading_of(ex, "Taxis") == "Expenses"
    assert "Hotel | 150 euros" in ex.text


def test_docx_zip_bomb_is_refused_before_parsing(tmp_path: Path) -> None:
    real = doc_files.make_docx(tmp_path / "ok.docx", [("A", ["b"])], page_break_between=False)
    bomb = doc_files.make_docx_zip_bomb(tmp_path / "bomb.docx", real, inflated_mb=64)
    assert bomb.stat().st_size < 2 * 2**20
    with pytest.raises(Skip, match="zip bomb"):
        loaders.load(bomb, "docx")


def test_markdown_and_rst_headings_form_paths(tmp_path: Path) -> None:
    md = tmp_path / "n.md"
    md.write_text(
        "# Garden\n\nIntro.\n\n## Pests\n\n```\n# not a heading\n```\n"
        "Aphids go with soap.\n\nSetext\n------\n\nLast part.\n",
        encoding="utf-8",
    )
    ex = loaders.load(md, "markdown")
    assert heading_of(ex, "Aphids") == "Garden › Pests"
    assert heading_of(ex, "Last part") == "Garden › Setext"
    rst = tmp_path / "n.rst"
    rst.write_text(
        "=====\nGuide\n=====\n\nInstall\n-------\n\nRun pip.\n\nUse\n---\n\nCall it.\n",
        encoding="utf-8",
    )
    ex = loaders.load(rst, "rst")
    assert heading_of(ex, "Run pip") == "Guide › Install"
    assert heading_of(ex, "Call it") == "Guide › Use"


def test_html_text_without_scripts_with_headings(tmp_path: Path) -> None:
    page = tmp_path / "p.html"
    page.write_text(
        "<html><head><title>Manual</title><style>p{}</style></head><body>"
        "<script>alert('x')</script><h1>Setup</h1><p>Plug it &amp; go.</p>"
        "<h2>Reset</h2><p>Hold the button.</p><table><tr><td>a</td><td>b</td>"
        "</tr></table></body></html>",
        encoding="utf-8",
    )
    ex = loaders.load(page, "html")
    assert "alert" not in ex.text and "p{}" not in ex.text
    assert "Plug it & go." in ex.text
    assert heading_of(ex, "Hold the button") == "Setup › Reset"


def test_csv_rows_keep_their_column_names(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("name;city\nAda;London\nGrace;Arlington\n", encoding="utf-8")
    assert "name: Grace; city: Arlington" in loaders.load(path, "csv").text


def test_json_is_flattened_to_paths(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"server": {"port": 8080, "hosts": ["a", "b"]}}))
    text = loaders.load(path, "json").text
    assert "server.port: 8080" in text and "server.hosts[1]: b" in text
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(Fail, match="not valid JSON"):
        loaders.load(bad, "json")


def test_encodings_are_detected(tmp_path: Path) -> None:
    latin = tmp_path / "latin.txt"
    latin.write_bytes("Der Bürgermeister grüßt die Gäste über dem Fluss.\n".encode("cp1252") * 5)
    ex = loaders.load(latin, "text")
    assert "Bürgermeister grüßt" in ex.text and ex.note and "not UTF-8" in ex.note
    utf16 = tmp_path / "u16.txt"
    utf16.write_text("Ünïcode in UTF-16 with a BOM", encoding="utf-16")
    assert loaders.load(utf16, "text").text.startswith("Ünïcode")


def test_western_legacy_text_is_read_as_windows_1252_and_central_european_as_1250(
    tmp_path: Path,
) -> None:
    # Short CP1252 text fits cp1250 as well, and the detector ranked 1250 first: "naïve" was
    # read as "naďve". A tie now goes to 1252; real 1250 text still reads as 1250.
    western = tmp_path / "menu.txt"
    western.write_bytes("Café crème, naïve façade — 20 €\n".encode("cp1252"))
    assert loaders.load(western, "text").text.strip() == "Café crème, naïve façade — 20 €"
    czech = tmp_path / "czech.txt"
    czech.write_bytes("Příliš žluťoučký kůň úpěl ďábelské ódy.\n".encode("cp1250") * 3)
    assert "Příliš žluťoučký kůň úpěl ďábelské ódy." in loaders.load(czech, "text").text


def test_a_stray_nul_keeps_a_markdown_file_and_says_so(tmp_path: Path) -> None:
    # It used to be dropped as binary: one NUL byte lost a whole document.
    notes = tmp_path / "notes.md"
    notes.write_bytes(b"# Boiler room\n\nThe key hangs behind the blue\x00 door.\n")
    ex = loaders.load(notes, "markdown")
    assert "The key hangs behind the blue door." in ex.text
    assert ex.note and "1 NUL bytes removed" in ex.note
    packed = tmp_path / "packed.md"
    packed.write_bytes(b"# x\n" + b"\x00\x01\x02" * 400)
    with pytest.raises(Skip, match="binary"):
        loaders.load(packed, "markdown")


def test_binary_named_txt_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "fake.txt"
    path.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(Skip, match="binary"):
        loaders.load(path, "text")


def test_kinds_by_name() -> None:
    assert loaders.kind_for(Path("a.PDF")) == "pdf"
    assert loaders.kind_for(Path("main.rs")) == "code"
    assert loaders.kind_for(Path("README")) == "text"
    assert loaders.kind_for(Path("photo.jpg")) is None
