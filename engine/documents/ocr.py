"""Read scanned PDF pages: rasterise them with PDFium, recognise the text with RapidOCR.

Runs inside the parse worker (`parse_worker.py`), like every reader of untrusted files, under its
memory cap; the parent gives each recognised page its own time budget (`parsing.FileParser`).

Libraries, chosen for licences fit to distribute and for wheels that carry everything they need:
pypdfium2 (Apache-2.0 / BSD-3; PDFium, Chrome's PDF renderer, built into the wheel) draws a page
to pixels; rapidocr (Apache-2.0) runs the PP-OCR text detection and recognition models
(Apache-2.0, from PaddleOCR, converted to ONNX and shipped inside the rapidocr wheel) on
onnxruntime (MIT).

Offline by construction: RapidOCR downloads a model only when it is given none, so the
model files inside its wheel are passed by path; if one is missing, OCR is unavailable and says
so, it is never fetched. The recognition model carries its own character list (no dictionary
download either). The worker's network guard refuses any connection on top of that.
"""

from __future__ import annotations

import functools
import math
import os
import statistics
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Pages are drawn at this resolution, the usual one for OCR of printed text...
DPI = 200
# ...but never to more pixels than this (an A4 page at 200 dpi is 3.9 million): a page declared
# 200 x 200 inches is drawn smaller instead of into gigabytes. RapidOCR scales its input to at
# most 2000 pixels a side anyway.
MAX_PIXELS = 4_000_000
# A page whose text layer has fewer letters and digits than this is treated as scanned (a
# scanner's stamp or a page number is not the page's text).
MIN_TEXT_CHARS = 16

# The models inside the rapidocr wheel (rapidocr/models/) and the settings that pick them.
# The line orientation classifier (for upside-down lines) is switched off: on upright pages it
# turned 2 of 25 good lines over into garbage, and scans are rarely upside down. Its file is
# still named, so that nothing would ever be fetched for it.
MODEL_FILES = {
    "Det": "PP-OCRv6_det_small.onnx",
    "Cls": "ch_ppocr_mobile_v2.0_cls_mobile.onnx",
    "Rec": "PP-OCRv6_rec_small.onnx",
}


class Unavailable(Exception):
    """OCR cannot run here (a package or model is missing); the reason is in the message."""


@dataclass(frozen=True)
class PageText:
    """What OCR made of one page: its text, or why it could not be read."""

    number: int  # 1-based
    text: str = ""
    error: str | None = None


def needs_ocr(text_layer: str) -> bool:
    """True when a page's text layer is too thin to be the page's text."""
    return sum(ch.isalnum() for ch in text_layer) < MIN_TEXT_CHARS


def render_scale(width_pt: float, height_pt: float, dpi: float = DPI) -> float:
    """The scale (pixels per PDF unit) to draw a page at: `dpi`, or less so that the bitmap
    stays within MAX_PIXELS."""
    scale = dpi / 72
    if not (math.isfinite(width_pt) and math.isfinite(height_pt)):
        raise ValueError("the page has no finite size")
    area = max(width_pt, 1.0) * max(height_pt, 1.0)
    if area * scale * scale > MAX_PIXELS:
        scale = math.sqrt(MAX_PIXELS / area)
    return scale


@functools.cache
def _engine() -> Any:
    """RapidOCR with the wheel's own models; loaded once per worker process (about a second)."""
    try:
        import rapidocr
        from rapidocr import RapidOCR
    except Exception as exc:  # ImportError, or onnxruntime's native library failing to load
        raise Unavailable(f"the OCR packages could not be loaded ({type(exc).__name__})") from exc
    models = Path(rapidocr.__file__).parent / "models"
    params: dict[str, Any] = {"Global.log_level": "error", "Global.use_cls": False}
    for part, name in MODEL_FILES.items():
        if not (models / name).is_file():
            raise Unavailable(f"the OCR model {name} is missing from this installation")
        params[f"{part}.model_path"] = str(models / name)
    # One core is left to the indexer, which embeds what was read meanwhile.
    params["EngineConfig.onnxruntime.intra_op_num_threads"] = max(
        1, min(4, (os.cpu_count() or 2) - 1)
    )
    try:
        return RapidOCR(params=params)
    except Exception as exc:
        raise Unavailable(f"the OCR engine could not start ({type(exc).__name__}: {exc})") from exc


def check() -> None:
    """Raise Unavailable unless OCR can run (loads the engine)."""
    _engine()


def read_pages(
    path: Path, numbers: Sequence[int], progress: Callable[[int, int], None] | None = None
) -> Iterator[PageText]:
    """OCR the given 1-based pages of the PDF at `path`, in order; a page that cannot be drawn
    or recognised comes back with its error and the next one is read. `progress(done, total)`
    is called before the first page and after each. Raises Unavailable before the first page
    when OCR cannot run, or when PDFium cannot open the file."""
    engine = _engine()
    try:
        import pypdfium2 as pdfium
    except Exception as exc:
        raise Unavailable(f"the PDF renderer could not be loaded ({type(exc).__name__})") from exc
    try:
        pdf = pdfium.PdfDocument(str(path))
    except Exception as exc:  # PdfiumError: damaged beyond what PDFium repairs, or a password
        raise Unavailable(f"PDFium could not open the file ({exc})") from exc
    try:
        if progress:
            progress(0, len(numbers))
        for done, number in enumerate(numbers, 1):
            yield _read_page(pdf, number, engine)
            if progress:
                progress(done, len(numbers))
    finally:
        pdf.close()


def _read_page(pdf: Any, number: int, engine: Any) -> PageText:
    try:
        page = pdf[number - 1]
    except Exception as exc:
        return PageText(number, error=f"the page could not be opened ({exc})")
    try:
        image = render(page)
        if image is None:
            return PageText(number)  # nothing drawn on it: a blank page
        try:
            result = engine(image)
        except MemoryError:
            return PageText(number, error="OCR ran out of memory")
        except Exception as exc:  # onnxruntime's errors (bad_alloc among them), OpenCV's
            why = "out of memory" if "bad_alloc" in str(exc) else type(exc).__name__
            return PageText(number, error=f"OCR failed ({why})")
        if result.boxes is None or not result.txts:
            broken = _broken_images(page)
            if broken:
                return PageText(number, error=f"{broken} damaged image(s) could not be decoded")
            return PageText(number)
        return PageText(number, layout(result.boxes.tolist(), list(result.txts)))
    except MemoryError:
        return PageText(number, error="the page needed more memory than allowed to draw")
    except Exception as exc:
        return PageText(number, error=f"the page could not be drawn ({exc})")
    finally:
        page.close()


def render(page: Any) -> Any:
    """The page as a grayscale pixel array (numpy), or None when it holds nothing to draw."""
    if not any(True for _ in page.get_objects(max_depth=1)):
        return None
    width, height = page.get_size()
    bitmap = page.render(scale=render_scale(width, height), grayscale=True)
    return bitmap.to_numpy().copy()  # the copy outlives the bitmap's PDFium buffer


def _broken_images(page: Any) -> int:
    """How many of the page's images PDFium cannot decode. PDFium draws a damaged image as
    nothing, so a page where OCR found no text is asked; images too large to decode safely
    (over 64 million pixels) are not tried."""
    import pypdfium2.raw as raw

    broken = 0
    for obj in page.get_objects(filter=(raw.FPDF_PAGEOBJ_IMAGE,)):
        try:
            w, h = obj.get_px_size()
            if w * h > 64_000_000:
                continue
            obj.get_bitmap().close()
        except Exception:
            broken += 1
    return broken


# -- reading order ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Box:
    left: float
    top: float
    right: float
    bottom: float
    text: str

    @property
    def height(self) -> float:
        return self.bottom - self.top

    @property
    def middle(self) -> float:
        return (self.top + self.bottom) / 2


def layout(polygons: Sequence[Sequence[Sequence[float]]], texts: Sequence[str]) -> str:
    """Text in reading order from OCR's line boxes (four corners each, clockwise from the top
    left, in pixels): the page is straightened by the boxes' median slant (a scan is rarely
    square), cut into columns where a wide vertical gap runs through a block, and each column
    read top to bottom, left to right. Lines are joined by newlines; a clearly wider gap
    between lines (a paragraph break) and a change of column by a blank line."""
    boxes = _straighten(polygons, texts)
    if not boxes:
        return ""
    unit = statistics.median(b.height for b in boxes)
    return "\n\n".join(_read_column(col, unit) for col in _columns(boxes, unit))


def _straighten(polygons: Sequence[Sequence[Sequence[float]]], texts: Sequence[str]) -> list[_Box]:
    angles = []
    for poly in polygons:
        (x0, y0), (x1, y1) = poly[0], poly[1]
        if abs(x1 - x0) > 1:
            angles.append(math.atan2(y1 - y0, x1 - x0))
    skew = statistics.median(angles) if angles else 0.0
    cos, sin = math.cos(skew), math.sin(skew)
    boxes = []
    for poly, text in zip(polygons, texts, strict=True):
        if not text.strip():
            continue
        xs = [x * cos + y * sin for x, y in poly]
        ys = [y * cos - x * sin for x, y in poly]
        boxes.append(_Box(min(xs), min(ys), max(xs), max(ys), text.strip()))
    return boxes


def _gaps(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The empty stretches between overlapping spans, as (start, end)."""
    out = []
    spans = sorted(spans)
    reach = spans[0][1]
    for start, end in spans[1:]:
        if start > reach:
            out.append((reach, start))
        reach = max(reach, end)
    return out


def _columns(boxes: list[_Box], unit: float) -> list[list[_Box]]:
    """Blocks in reading order (a recursive XY cut): a gap of at least one line's height
    running through a whole block splits it into columns, left first; a block without one is
    cut at its wide blank bands (a title above two columns) if a part below then has columns."""
    todo = [boxes]
    out: list[list[_Box]] = []
    while todo:
        block = todo.pop(0)
        x_gaps = [g for g in _gaps([(b.left, b.right) for b in block]) if g[1] - g[0] >= unit]
        if x_gaps:
            at = max(x_gaps, key=lambda g: g[1] - g[0])[0]
            left = [b for b in block if b.right <= at]
            right = [b for b in block if b.right > at]
            todo[:0] = [left, right]
            continue
        y_gaps = [g for g in _gaps([(b.top, b.bottom) for b in block]) if g[1] - g[0] >= unit]
        bands: list[list[_Box]] = []
        edges = [g[0] for g in y_gaps] + [math.inf]
        rest = sorted(block, key=lambda b: b.top)
        for edge in edges:
            bands.append([b for b in rest if b.bottom <= edge])
            rest = [b for b in rest if b.bottom > edge]
        if len(bands) > 1 and any(_has_columns(band, unit) for band in bands):
            todo[:0] = bands
        else:
            out.append(block)
    return out


def _has_columns(block: list[_Box], unit: float) -> bool:
    return len(block) > 1 and any(
        g[1] - g[0] >= unit for g in _gaps([(b.left, b.right) for b in block])
    )


def _read_column(block: list[_Box], unit: float) -> str:
    lines: list[list[_Box]] = []
    for box in sorted(block, key=lambda b: b.middle):
        line = lines[-1] if lines else None
        if line and abs(box.middle - statistics.fmean(b.middle for b in line)) < box.height / 2:
            line.append(box)
        else:
            lines.append([box])
    tops = [min(b.top for b in line) for line in lines]
    bottoms = [max(b.bottom for b in line) for line in lines]
    gaps = [tops[i] - bottoms[i - 1] for i in range(1, len(lines))]
    usual = statistics.median(gaps) if len(gaps) >= 2 else 0.0
    parts = []
    for i, line in enumerate(lines):
        if i:
            parts.append("\n\n" if gaps[i - 1] > usual + 0.4 * unit else "\n")
        parts.append(" ".join(b.text for b in sorted(line, key=lambda b: b.left)))
    return "".join(parts)
