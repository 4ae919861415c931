"""Turn one file into text with its page starts and headings.

These functions read untrusted files; they run inside the parse worker process (see
`parse_worker.py`), never in the app. One library per format, chosen for its licence (the app
is distributed): pypdf (BSD-3) for PDF, python-docx (MIT) for DOCX, charset-normalizer (MIT) to
detect text encodings; HTML, CSV, JSON, Markdown and reStructuredText with the standard library.
Scanned PDF pages are read by OCR (`ocr.py`).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from engine.documents import hidden


class Skip(Exception):
    """The file is deliberately not indexed (reason in the message)."""


class Fail(Exception):
    """The file could not be read (reason in the message)."""


@dataclass
class Extracted:
    """A document's text. `pages[i]` is the offset where page i+1 starts (empty for formats
    without pages); `headings` are (offset, heading path) in order of appearance; `ocr_pages`
    are the (1-based) pages whose text was recognised from their image, not read."""

    kind: str
    text: str
    pages: list[int] = field(default_factory=list)
    headings: list[tuple[int, str]] = field(default_factory=list)
    note: str | None = None
    ocr_pages: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "text": self.text,
            "pages": self.pages,
            "headings": self.headings,
            "note": self.note,
            "ocr_pages": self.ocr_pages,
        }


@dataclass(frozen=True)
class Options:
    """How to read: `ocr` reads scanned PDF pages; `progress` hears how far a long read is
    (the parse worker passes it on, and its parent gives each report a fresh time budget)."""

    ocr: bool = True
    progress: Callable[[str], None] | None = None


CODE_EXTENSIONS = frozenset(
    [
        ".py",
        ".pyi",
        ".js",
        ".mjs",
        ".cjs",
        ".ts",
        ".tsx",
        ".jsx",
        ".java",
        ".kt",
        ".kts",
        ".scala",
        ".c",
        ".h",
        ".cc",
        ".cpp",
        ".cxx",
        ".hpp",
        ".hh",
        ".cs",
        ".go",
        ".rs",
        ".rb",
        ".php",
        ".swift",
        ".m",
        ".mm",
        ".sh",
        ".bash",
        ".zsh",
        ".ps1",
        ".bat",
        ".sql",
        ".r",
        ".lua",
        ".pl",
        ".pm",
        ".dart",
        ".ex",
        ".exs",
        ".erl",
        ".hs",
        ".jl",
        ".vue",
        ".svelte",
        ".css",
        ".scss",
        ".less",
        ".yaml",
        ".yml",
        ".toml",
        ".ini",
        ".cfg",
        ".conf",
        ".properties",
        ".xml",
        ".gradle",
        ".tex",
        ".el",
        ".clj",
        ".f90",
        ".proto",
        ".graphql",
        ".tf",
        ".cmake",
        ".mk",
    ]
)
KINDS: dict[str, str] = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".txt": "text",
    ".text": "text",
    ".log": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".rst": "rst",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    **{ext: "code" for ext in CODE_EXTENSIONS},
}
SPECIAL_NAMES = {
    "readme": "text",
    "license": "text",
    "copying": "text",
    "makefile": "code",
    "dockerfile": "code",
    "changelog": "text",
    "notice": "text",
}

# Zip containers (DOCX): refuse what expands beyond these before any XML is parsed.
ZIP_MAX_ENTRIES = 10_000
ZIP_MAX_TOTAL = 512 * 1024 * 1024
ZIP_MAX_RATIO = 100


def kind_for(path: Path) -> str | None:
    """The loader for a file name, or None when we do not read that type."""
    ext = path.suffix.lower()
    if ext in KINDS:
        return KINDS[ext]
    if not ext and path.name.lower() in SPECIAL_NAMES:
        return SPECIAL_NAMES[path.name.lower()]
    return None


def load(path: Path, kind: str, options: Options | None = None) -> Extracted:
    """Read `path` with the loader for `kind`; raises Skip or Fail with a reason."""
    extracted = load_pdf(path, options) if kind == "pdf" else _LOADERS[kind](path)
    if not extracted.text.strip():
        raise Skip("no text in the file")
    return extracted


# -- text and encodings ---------------------------------------------------------------------

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def decode(data: bytes) -> tuple[str, str | None]:
    """Bytes to text, with a note when it was not UTF-8. Raises Skip for binary data."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return _clean(data.decode(encoding, errors="replace")), None
    nuls = data[:65536].count(b"\0")
    if nuls:
        # A stray NUL or two in otherwise UTF-8 text (an editor's or a tool's slip) should
        # not lose the file; more than that is binary data (or BOM-less UTF-16).
        if nuls <= max(1, len(data[:65536]) // 1000):
            try:
                text = data.replace(b"\0", b"").decode("utf-8")
            except UnicodeDecodeError:
                raise Skip("binary data, not text") from None
            removed = data.count(b"\0")
            return _clean(text), f"{removed} NUL bytes removed"
        raise Skip("binary data, not text")
    try:
        return _clean(data.decode("utf-8")), None
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = from_bytes(data[:1_000_000])
    best = matches.best()
    if best is None or best.encoding is None:
        raise Skip("binary data, not text (no text encoding fits)")
    # Short Western text often fits Windows-1250 as well as Windows-1252, and the detector
    # ranks 1250 first ("naïve" came out "naďve"). On a tie, take 1252, the commonest legacy
    # encoding (browsers default to it for the same reason).
    for match in matches:
        if (
            match.encoding == "cp1252"
            and match.chaos <= best.chaos
            and match.coherence >= best.coherence
        ):
            best = match
            break
    text = data.decode(best.encoding, errors="replace")
    controls = sum(1 for ch in text[:65536] if ord(ch) < 32 and ch not in "\t\n\r\f")
    if controls > len(text[:65536]) * 0.05:
        raise Skip("binary data, not text")
    return _clean(text), f"not UTF-8: read as {best.encoding}"


def _clean(text: str) -> str:
    # Normalise line ends so that character and line spans mean the same on every platform.
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "")


def _read_text(path: Path) -> tuple[str, str | None]:
    return decode(path.read_bytes())


def load_text(path: Path) -> Extracted:
    text, note = _read_text(path)
    return Extracted("text", text, note=note)


def load_code(path: Path) -> Extracted:
    text, note = _read_text(path)
    return Extracted("code", text, note=note)


_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


def load_markdown(path: Path) -> Extracted:
    text, note = _read_text(path)
    text, found = hidden.strip_comments(text)
    note = hidden.note(found, note)
    headings: list[tuple[int, str]] = []
    stack: list[tuple[int, str]] = []
    offset = 0
    in_fence = False
    lines = text.split("\n")
    for i, line in enumerate(lines):
        level, title = 0, ""
        if _FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence:
            m = _ATX.match(line)
            if m:
                level, title = len(m.group(1)), m.group(2).strip()
            elif (
                i + 1 < len(lines)
                and line.strip()
                and not line.startswith(("    ", "\t"))
                and re.fullmatch(r" {0,3}(=+|-+)[ \t]*", lines[i + 1])
            ):
                level, title = (1 if "=" in lines[i + 1] else 2), line.strip()
        if level:
            stack = [(lv, t) for lv, t in stack if lv < level] + [(level, title)]
            headings.append((offset, " › ".join(t for _, t in stack)))
        offset += len(line) + 1
    return Extracted("markdown", text, headings=headings, note=note)


_RST_ADORNMENT = re.compile(r"^([=\-`:'\"~^_*+#<>.])\1{2,}\s*$")


def load_rst(path: Path) -> Extracted:
    text, note = _read_text(path)
    lines = text.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    styles: list[tuple[str, bool]] = []  # adornment styles in order of first use = levels
    stack: list[tuple[int, str]] = []
    headings: list[tuple[int, str]] = []
    i = 0
    while i + 1 < len(lines):
        title, under = lines[i], lines[i + 1]
        over = i > 0 and bool(_RST_ADORNMENT.match(lines[i - 1]))
        if (
            title.strip()
            and not _RST_ADORNMENT.match(title)
            and _RST_ADORNMENT.match(under)
            and len(under.rstrip()) >= len(title.rstrip())
        ):
            style = (under[0], over)
            if style not in styles:
                styles.append(style)
            level = styles.index(style) + 1
            stack = [(lv, t) for lv, t in stack if lv < level] + [(level, title.strip())]
            headings.append((starts[i], " › ".join(t for _, t in stack)))
            i += 2
            continue
        i += 1
    return Extracted("rst", text, headings=headings, note=note)


# -- HTML -------------------------------------------------------------------------------------

_BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "details",
        "dialog",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tr",
        "td",
        "th",
        "ul",
        "caption",
    ]
)
_VOID_TAGS = frozenset(
    (
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    )
)
_SKIP_TAGS = frozenset(
    ["script", "style", "noscript", "template", "svg", "head", "iframe", "object"]
)


class _HtmlText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.length = 0
        self.skip = 0
        self.title: list[str] = []
        self.in_title = False
        self.heading_level = 0
        self.heading_text: list[str] = []
        self.heading_at = 0
        self.stack: list[tuple[int, str]] = []
        self.headings: list[tuple[int, str]] = []
        self.pre = 0
        self.capture: list[list[Any]] = []  # [kind, open tags, text] of hidden or white elements
        self.found: list[hidden.Finding] = []

    def _emit(self, text: str) -> None:
        self.parts.append(text)
        self.length += len(text)

    def handle_comment(self, data: str) -> None:
        if len(data.split()) >= 3 and not self.skip:  # a few-word marker is not a message
            self.found.append(hidden.Finding(hidden.COMMENT, data.strip()))

    def _hiding(self) -> bool:
        return any(c[0] != hidden.WHITE for c in self.capture)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _VOID_TAGS:
            for c in self.capture:
                c[1] += 1
            kind = hidden.html_element_kind(attrs)
            if kind is not None:
                self.capture.append([kind, 1, []])
        if self._hiding():
            return
        if tag in _SKIP_TAGS:
            self.skip += 1
        if tag == "title":
            self.in_title = True
        if tag == "pre":
            self.pre += 1
        if tag in _BLOCK_TAGS:
            self._emit("\n")
        if tag in ("td", "th"):
            self._emit(" | ")
        if len(tag) == 2 and tag[0] == "h" and tag[1] in "123456" and not self.skip:
            self.heading_level, self.heading_text, self.heading_at = int(tag[1]), [], self.length

    def handle_endtag(self, tag: str) -> None:
        if tag not in _VOID_TAGS and self.capture:
            hiding = self._hiding()
            for c in self.capture:
                c[1] -= 1
            while self.capture and self.capture[-1][1] <= 0:
                kind, _depth, parts = self.capture.pop()
                text = " ".join("".join(parts).split())
                if text:
                    self.found.append(hidden.Finding(kind, text))
            if hiding:
                return
        if tag in _SKIP_TAGS and self.skip:
            self.skip -= 1
        if tag == "title":
            self.in_title = False
        if tag == "pre" and self.pre:
            self.pre -= 1
        if (
            len(tag) == 2
            and tag[0] == "h"
            and tag[1] in "123456"
            and self.heading_level
            and int(tag[1]) == self.heading_level
        ):
            title = " ".join("".join(self.heading_text).split()).rstrip("¶").strip()
            if title:
                level = self.heading_level
                self.stack = [(lv, t) for lv, t in self.stack if lv < level] + [(level, title)]
                self.headings.append((self.heading_at, " › ".join(t for _, t in self.stack)))
            self.heading_level = 0
        if tag in _BLOCK_TAGS:
            self._emit("\n")

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
            return
        if self.skip:
            return
        for c in self.capture:
            c[2].append(data)
        if self._hiding():
            return
        if not self.pre:
            data = re.sub(r"\s+", " ", data)
        if self.heading_level:
            self.heading_text.append(data)
        self._emit(data)


def load_html(path: Path) -> Extracted:
    raw, note = _read_text(path)
    parser = _HtmlText()
    try:
        parser.feed(raw)
        parser.close()
    except (AssertionError, ValueError) as exc:  # html.parser's own complaints
        raise Fail(f"damaged HTML: {exc}") from exc
    text = "".join(parser.parts)
    # Collapse the blank runs block tags leave, keeping heading offsets right.
    compact, mapping = _squeeze_newlines(text)
    headings = [(mapping(o), h) for o, h in parser.headings]
    title = " ".join("".join(parser.title).split())
    if title and (not headings or headings[0][0] > 0):
        headings.insert(0, (0, title))
    return Extracted("html", compact, headings=headings, note=hidden.note(parser.found, note))


def _squeeze_newlines(text: str) -> tuple[str, Any]:
    """Collapse the blank runs that block tags leave (at most one empty line) and leading
    spaces; return the text and a function mapping old offsets to new ones."""
    out: list[str] = []
    length = 0
    old_to_new: list[int] = []
    newlines = 0
    for ch in text:
        old_to_new.append(length)
        if ch == "\n":
            newlines += 1
            continue
        if ch == " " and (newlines or not out or out[-1].endswith("\n")):
            continue
        if newlines and out:
            piece = "\n\n" if newlines > 1 else "\n"
            out.append(piece)
            length += len(piece)
            old_to_new[-1] = length
        newlines = 0
        out.append(ch)
        length += 1
    old_to_new.append(length)

    def mapping(old: int) -> int:
        return old_to_new[min(old, len(old_to_new) - 1)]

    return "".join(out), mapping


# -- CSV and JSON -----------------------------------------------------------------------------


def load_csv(path: Path) -> Extracted:
    text, note = _read_text(path)
    sample = text[:16384]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel
    try:
        rows = list(csv.reader(io.StringIO(text), dialect))
    except csv.Error as exc:
        raise Fail(f"damaged CSV: {exc}") from exc
    if not rows:
        return Extracted("csv", "", note=note)
    header = [h.strip() for h in rows[0]]
    has_header = _looks_like_header(rows)
    lines = []
    for row in rows[1:] if has_header else rows:
        if not any(cell.strip() for cell in row):
            continue
        if has_header:
            cells = [
                f"{header[i] if i < len(header) else f'column {i + 1}'}: {v.strip()}"
                for i, v in enumerate(row)
                if v.strip()
            ]
        else:
            cells = [v.strip() for v in row if v.strip()]
        lines.append("; ".join(cells))
    return Extracted("csv", "\n".join(lines), note=note)


def _looks_like_header(rows: list[list[str]]) -> bool:
    first = rows[0]
    if len(rows) < 2 or not all(cell.strip() for cell in first):
        return False
    return not any(_is_number(c) for c in first)


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return True


def load_json(path: Path) -> Extracted:
    text, note = _read_text(path)
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise Fail(f"not valid JSON: {str(exc)[:120]}") from exc
    lines: list[str] = []
    try:
        _flatten(data, "", lines)
    except RecursionError as exc:
        raise Fail("JSON nested too deeply") from exc
    return Extracted("json", "\n".join(lines), note=note)


def _flatten(value: Any, prefix: str, out: list[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _flatten(item, f"{prefix}[{i}]", out)
    elif value is not None and value != "":
        out.append(f"{prefix}: {value}" if prefix else str(value))


# -- PDF --------------------------------------------------------------------------------------


def load_pdf(path: Path, options: Options | None = None) -> Extracted:
    """The text layer of each page (pypdf); pages without one are read by OCR when it is on
    and available, and listed in `ocr_pages`."""
    import logging

    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

    options = options or Options()
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings are ours to report
    try:
        reader = PdfReader(path, strict=False)
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")
            except (NotImplementedError, DependencyError) as exc:
                raise Skip(f"encrypted PDF that this build cannot open ({exc})") from exc
            if not opened:
                raise Skip("encrypted PDF: it needs a password")
        texts: list[str] = []
        found: list[hidden.Finding] = []
        for number, page in enumerate(reader.pages, 1):
            raw, on_page = hidden.pdf_page_text(page, number)
            found += on_page
            texts.append(_clean(raw).strip())
    except (Skip, Fail):
        raise
    except FileNotDecryptedError as exc:
        raise Skip("encrypted PDF: it needs a password") from exc
    except (
        PdfReadError,
        ValueError,
        KeyError,
        TypeError,
        IndexError,
        AttributeError,
        RecursionError,
        OSError,
        AssertionError,
        ZeroDivisionError,
    ) as exc:
        raise Fail(f"damaged or unreadable PDF: {type(exc).__name__}: {str(exc)[:160]}") from exc
    ocr_pages, note = _ocr_thin_pages(path, texts, options)
    pages: list[int] = []
    offset = 0
    for text in texts:
        pages.append(offset)
        offset += len(text) + 2  # the "\n\n" that joins pages
    return Extracted(
        "pdf",
        "\n\n".join(texts),
        pages=pages,
        note=hidden.note(found, note),
        ocr_pages=ocr_pages,
    )


def _ocr_thin_pages(path: Path, texts: list[str], options: Options) -> tuple[list[int], str | None]:
    """Replace, in `texts`, the pages without a real text layer by what OCR reads on them.
    Returns the pages read and a note for the file; raises Skip or Fail when no page has text."""
    from engine.documents import ocr

    thin = [n for n, text in enumerate(texts, 1) if ocr.needs_ocr(text)]
    if not thin:
        return [], None
    everything = len(thin) == len(texts)
    missing = f"{len(thin)} of {len(texts)} pages have no text layer"
    if not options.ocr:
        if everything and not any(texts):
            raise Skip("no text layer (OCR is off in the settings)")
        return [], f"{missing} (OCR is off in the settings)"
    read: list[int] = []
    failed: list[str] = []

    def report(done: int, total: int) -> None:
        if options.progress is not None:
            options.progress(
                f"OCR: page {done + 1} of {total}" if done < total else f"OCR: {total} pages"
            )

    try:
        for page in ocr.read_pages(path, thin, report):
            if page.error:
                failed.append(f"page {page.number}: {page.error}")
            elif page.text.strip():
                texts[page.number - 1] = page.text.strip()
                read.append(page.number)
    except ocr.Unavailable as exc:
        if everything and not any(texts):
            raise Skip(f"no text layer (OCR not available: {exc})") from exc
        return [], f"{missing} (OCR not available: {exc})"
    notes = [f"{len(read)} of {len(texts)} pages read by OCR"] if read else []
    blank = len(thin) - len(read) - len(failed)
    if blank and any(texts):
        notes.append(f"{blank} of {len(texts)} pages have no text")
    if failed:
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        notes.append(f"OCR could not read {'; '.join(failed[:5])}{more}")
    if not any(texts):
        if failed:
            raise Fail(f"no text layer, and {notes[-1]}")
        raise Skip("no text layer, and OCR found no text")
    return read, "; ".join(notes) or None


# -- DOCX -------------------------------------------------------------------------------------


def check_zip(path: Path) -> None:
    """Refuse zip containers that expand too far (zip bombs) or hold odd entries."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise Fail(f"damaged file (not a valid zip container): {exc}") from exc
    if len(infos) > ZIP_MAX_ENTRIES:
        raise Skip(f"zip container with {len(infos):,} entries (limit {ZIP_MAX_ENTRIES:,})")
    total = sum(i.file_size for i in infos)
    packed = sum(i.compress_size for i in infos) or 1
    if total > ZIP_MAX_TOTAL:
        raise Skip(
            f"expands to {total / 2**20:,.0f} MB (limit {ZIP_MAX_TOTAL // 2**20} MB): "
            "possible zip bomb"
        )
    if total > 10 * 2**20 and total / packed > ZIP_MAX_RATIO:
        raise Skip(
            f"compression ratio {total / packed:,.0f}:1 (limit {ZIP_MAX_RATIO}:1): "
            "possible zip bomb"
        )


_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def load_docx(path: Path) -> Extracted:
    check_zip(path)
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise Fail(f"damaged DOCX: {type(exc).__name__}: {str(exc)[:160]}") from exc
    except Exception as exc:  # lxml's XMLSyntaxError and friends
        raise Fail(f"damaged DOCX: {type(exc).__name__}: {str(exc)[:160]}") from exc
    body = document.element.body
    # Word records where its last layout broke pages; documents written by other tools only
    # have explicit page breaks. Use the first when present (it includes the second).
    rendered = any(True for _ in body.iter(f"{_W}lastRenderedPageBreak"))
    parts: list[str] = []
    pages = [0]
    headings: list[tuple[int, str]] = []
    stack: list[tuple[int, str]] = []
    offset = 0
    found: list[hidden.Finding] = []

    def page_breaks(element: Any) -> int:
        if rendered:
            return sum(1 for _ in element.iter(f"{_W}lastRenderedPageBreak"))
        return sum(1 for br in element.iter(f"{_W}br") if br.get(f"{_W}type") == "page")

    for block in body.iterchildren():
        if block.tag == f"{_W}p":
            from docx.text.paragraph import Paragraph

            para = Paragraph(block, document)
            raw, on_para = hidden.docx_paragraph_text(para)
            found += on_para
            text = raw.strip()
            style = (para.style.name if para.style is not None else "") or ""
            for _ in range(page_breaks(block)):
                pages.append(offset)
            if not text:
                continue
            level = _heading_level(style)
            if level:
                stack = [(lv, t) for lv, t in stack if lv < level] + [(level, text)]
                headings.append((offset, " › ".join(t for _, t in stack)))
        elif block.tag == f"{_W}tbl":
            from docx.table import Table

            for _ in range(page_breaks(block)):
                pages.append(offset)
            rows = []
            for row in Table(block, document).rows:
                cells = list(dict.fromkeys(c.text.strip() for c in row.cells))
                rows.append(" | ".join(c for c in cells if c))
            text = "\n".join(r for r in rows if r)
            if not text:
                continue
        else:
            continue
        parts.append(text)
        offset += len(text) + 1
    text = "\n".join(parts)
    # Two breaks at one offset are a blank page: keep both so later pages count right.
    return Extracted(
        "docx",
        text,
        pages=pages if len(pages) > 1 else [],
        headings=headings,
        note=hidden.note(found),
    )


def _heading_level(style: str) -> int:
    if style == "Title":
        return 1
    m = re.fullmatch(r"Heading (\d)", style)
    return int(m.group(1)) if m else 0


_LOADERS = {
    "pdf": load_pdf,
    "docx": load_docx,
    "text": load_text,
    "markdown": load_markdown,
    "rst": load_rst,
    "html": load_html,
    "csv": load_csv,
    "json": load_json,
    "code": load_code,
}
