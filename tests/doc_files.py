"""Real documents for the tests, written by real libraries: PDFs by reportlab (and encrypted by
pypdf), DOCX by python-docx. Plus the hostile files an indexer meets in the wild."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any


def make_pdf(path: Path, pages: list[str]) -> Path:
    """One PDF page per string; long strings wrap over several lines of the page."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4)
    for text in pages:
        y = 780
        for line in _wrap(text, 90):
            c.drawString(56, y, line)
            y -= 14
        c.showPage()
    c.save()
    return path


def make_scanned_pdf(path: Path, pages: int = 2) -> Path:
    """Pages with only drawings on them, as a scanner without OCR produces: no text layer."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4)
    for i in range(pages):
        for k in range(40):
            c.rect(40 + k * 3, 100 + i * 10 + k * 15, 400 - k * 5, 6, fill=1)
        c.showPage()
    c.save()
    return path


# fonts-dejavu-core (scripts/_install.sh installs it where it is missing).
SCAN_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf")


def real_prose(paragraphs: int = 12, *, skip: int = 0) -> list[str]:
    """Paragraphs of real English prose: the GNU GPL v3 from its preamble on, which every
    Debian system carries (base-files), else the Zen of Python, which every Python carries."""
    gpl = Path("/usr/share/common-licenses/GPL-3")
    if gpl.is_file():
        text = gpl.read_text(encoding="utf-8")
        body = text[text.index("Preamble") + len("Preamble") :]
    else:
        import codecs
        import this

        body = codecs.decode(this.s, "rot13").replace("\n", "\n\n")
    paras = [" ".join(p.split()) for p in body.split("\n\n")]
    return [p for p in paras if p][skip : skip + paragraphs]


def scan_page(
    paragraphs: list[str],
    *,
    dpi: int = 200,
    angle: float = 0.0,
    drawn: list[str] | None = None,
) -> Any:
    """A Letter page as a scanner would see it: the paragraphs set in 11 pt DejaVu Serif (a real
    TrueType font) and drawn to a grayscale image at `dpi`, then turned by `angle` degrees.
    The lines that fit on the page are appended to `drawn`."""
    from PIL import Image, ImageDraw, ImageFont

    width, height = int(8.5 * dpi), int(11 * dpi)
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(SCAN_FONT), round(11 / 72 * dpi))
    margin, line, gap = dpi, round(15 / 72 * dpi), round(9 / 72 * dpi)
    y = margin
    for paragraph in paragraphs:
        for text in _wrap(paragraph, 78):
            if y + line > height - margin:
                break
            draw.text((margin, y), text, font=font, fill=0)
            if drawn is not None:
                drawn.append(text)
            y += line
        y += gap
    if angle:
        image = image.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=255)
    return image


def make_image_pdf(path: Path, images: list[Any], dpi: int = 200) -> Path:
    """Images as the pages of a PDF (Pillow's PDF writer): no text layer, as from a scanner."""
    images[0].save(path, save_all=True, append_images=images[1:], resolution=dpi)
    return path


def join_pdfs(path: Path, parts: list[Path]) -> Path:
    from pypdf import PdfWriter

    writer = PdfWriter()
    for part in parts:
        writer.append(str(part))
    with path.open("wb") as fh:
        writer.write(fh)
    return path


def make_encrypted_pdf(path: Path, source: Path, password: str = "s3cret") -> Path:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(source).pages:
        writer.add_page(page)
    writer.encrypt(user_password=password, owner_password=password + "-owner", algorithm="AES-256")
    with path.open("wb") as fh:
        writer.write(fh)
    return path


def make_docx(
    path: Path,
    sections: list[tuple[str, list[str]]],
    *,
    page_break_between: bool,
    table: list[list[str]] | None = None,
) -> Path:
    """Sections of (heading, paragraphs); a page break before every section but the first."""
    import docx

    document = docx.Document()
    for i, (heading, paragraphs) in enumerate(sections):
        if i and page_break_between:
            document.add_page_break()
        document.add_heading(heading, level=1)
        for text in paragraphs:
            document.add_paragraph(text)
    if table:
        t = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, cell in enumerate(row):
                t.cell(r, c).text = cell
    document.save(str(path))
    return path


def make_docx_zip_bomb(path: Path, source: Path, inflated_mb: int = 64) -> Path:
    """A real DOCX whose document.xml is padded with whitespace to `inflated_mb` MB: it
    compresses about 1000:1, the signature of a zip bomb."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "word/document.xml":
                with out.open(info.filename, "w", force_zip64=True) as fh:
                    head, tail = data.split(b"<w:body>", 1)
                    fh.write(head + b"<w:body>")
                    block = b" " * (1 << 20)
                    for _ in range(inflated_mb):
                        fh.write(block)
                    fh.write(tail)
            else:
                out.writestr(info, data)
    return path


def truncate(path: Path, keep_fraction: float) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep_fraction)])
    return path


def make_fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    if current:
        lines.append(current)
    return lines
