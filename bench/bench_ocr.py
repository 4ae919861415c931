"""How well and how fast Hearth reads scanned PDF pages (engine/documents/ocr.py).

Scans are made from real text: the GNU GPL v3 (from its preamble on), set in 11 pt DejaVu
Serif on Letter pages, drawn at 150, 200 and 300 dpi and turned 0, 2 and -3 degrees, saved as
image-only PDF pages by Pillow, as a scanner without OCR writes them. Each configuration gets
its own pages of text. Hearth's own path reads them (`loaders.load`: pypdf finds no text
layer, PDFium draws the page, RapidOCR reads it), in this process, with the engine loaded
before the clock starts.

Reported per configuration: character accuracy, 1 - CER, where CER is the Levenshtein distance
between what was drawn and what was read, over the number of characters drawn (both with
runs of white space made one space; case and punctuation count); and pages per second. The
baseline, measured in the same run, is what a PDF reader without OCR gets from the same files:
pypdf's text layer, which is empty.

Prints a table and writes JSON to bench/results/ocr-<time>.json.

    .venv/bin/python bench/bench_ocr.py [--pages 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pypdf import PdfReader  # noqa: E402

from engine.documents import loaders, ocr  # noqa: E402
from tests import doc_files  # noqa: E402

DPIS = (150, 200, 300)
ANGLES = (0.0, 2.0, -3.0)


def normalise(text: str) -> str:
    return " ".join(text.split())


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions and substitutions cost 1), one row at a
    time."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def errors(truths: list[str], reads: list[str]) -> tuple[int, int]:
    """Edits and characters over pages (each page aligned with its own text)."""
    edits = sum(
        edit_distance(normalise(t), normalise(r)) for t, r in zip(truths, reads, strict=True)
    )
    return edits, sum(len(normalise(t)) for t in truths)


def make_scan(folder: Path, paragraphs: list[str], dpi: int, angle: float, pages: int) -> Any:
    """`pages` pages of the paragraphs (as many as fit on each); returns the PDF, the text
    drawn on each page and the paragraphs left over (the text starts again at its end)."""
    images, truths = [], []
    for _ in range(pages):
        if len(paragraphs) < 40:
            paragraphs = paragraphs + doc_files.real_prose(1000)
        drawn: list[str] = []
        images.append(doc_files.scan_page(paragraphs, dpi=dpi, angle=angle, drawn=drawn))
        truths.append(" ".join(drawn))
        # Start the next page with the first paragraph not wholly drawn.
        used = 0
        text = " ".join(drawn)
        while used < len(paragraphs) and normalise(paragraphs[used]) in text:
            used += 1
        paragraphs = paragraphs[max(used, 1) :]
    path = folder / f"scan-{dpi}-{angle:g}.pdf"
    doc_files.make_image_pdf(path, images, dpi=dpi)
    return path, truths, paragraphs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=2, help="pages per configuration")
    args = parser.parse_args()
    if not doc_files.SCAN_FONT.is_file():
        sys.exit(f"bench_ocr: {doc_files.SCAN_FONT} is missing (Debian: fonts-dejavu-core)")
    prose = doc_files.real_prose(1000)
    t = time.perf_counter()
    ocr.check()  # load the models before any clock starts
    load_s = time.perf_counter() - t
    load_before = os.getloadavg()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for dpi in DPIS:
            for angle in ANGLES:
                pdf, truths, prose = make_scan(Path(tmp), prose, dpi, angle, args.pages)
                t = time.perf_counter()
                read = loaders.load(pdf, "pdf")
                seconds = time.perf_counter() - t
                assert read.ocr_pages == list(range(1, args.pages + 1)), read.note
                ends = [*read.pages[1:], len(read.text)]
                pages_read = [read.text[s:e] for s, e in zip(read.pages, ends, strict=True)]
                text_layer = [p.extract_text() or "" for p in PdfReader(pdf).pages]
                edits, characters = errors(truths, pages_read)
                layer_edits, _ = errors(truths, text_layer)
                rows.append(
                    {
                        "dpi": dpi,
                        "angle": angle,
                        "pages": args.pages,
                        "characters": characters,
                        "edits": edits,
                        "accuracy": 1 - edits / characters,
                        "seconds": seconds,
                        "pages_per_s": args.pages / seconds,
                        "text_layer_accuracy": 1 - layer_edits / characters,
                    }
                )
                r = rows[-1]
                print(
                    f"{dpi:>4} dpi {angle:>+5.1f}°  {r['characters']:>6} chars  "
                    f"accuracy {r['accuracy']:7.2%}  {r['pages_per_s']:.3f} pages/s  "
                    f"(text layer {r['text_layer_accuracy']:.0%})",
                    flush=True,
                )
    machine = {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "ocr_threads": max(1, min(4, (os.cpu_count() or 2) - 1)),
        "engine_load_s": load_s,
    }
    print()
    print("| scan dpi | turned | characters | OCR character accuracy | pages/s | text layer |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['dpi']} | {r['angle']:+g}° | {r['characters']:,} | {r['accuracy']:.2%} "
            f"| {r['pages_per_s']:.2f} | {r['text_layer_accuracy']:.0%} |"
        )
    total_pages = sum(r["pages"] for r in rows)
    total_s = sum(r["seconds"] for r in rows)
    print(
        f"\nall: {total_pages} pages in {total_s:.0f} s ({total_pages / total_s:.2f} pages/s); "
        f"engine load {load_s:.1f} s; {machine['cpu_count']} CPUs, load average "
        f"{load_before[0]:.1f} before, {machine['load_average_after'][0]:.1f} after"
    )
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    path = results / f"ocr-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
