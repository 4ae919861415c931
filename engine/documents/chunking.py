"""Split a document's text into passages that fit the embedder, with page and heading.

The embedder reads at most 256 word pieces including its two markers, and silently drops the
rest; so chunks are cut in the embedder's own token space, never by characters. Each chunk ends
at the best boundary available (paragraph, then line or sentence end, then word) and the next
one starts a little earlier (the overlap), so a sentence cut at a boundary is still found whole.
Chunks never span two pages or two sections, so a citation names one page and one heading.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

from engine.documents.store import NewChunk

MARKERS = 2  # [CLS] and [SEP]
WINDOW_CHARS = 100_000  # a section is tokenized this much at a time (`_windows`)


@dataclass(frozen=True)
class Segment:
    start: int
    end: int
    page: int | None
    heading: str | None


def segments(text: str, pages: list[int], headings: list[tuple[int, str]]) -> Iterator[Segment]:
    """Stretches of text on one page under one heading."""
    cuts = {0, len(text)}
    cuts.update(p for p in pages if 0 < p < len(text))
    cuts.update(o for o, _ in headings if 0 < o < len(text))
    ordered = sorted(cuts)
    heading_offsets = [o for o, _ in headings]
    for start, end in itertools.pairwise(ordered):
        page = bisect.bisect_right(pages, start) if pages else None
        h = bisect.bisect_right(heading_offsets, start) - 1
        yield Segment(start, end, page or None, headings[h][1] if h >= 0 else None)


def chunk_text(
    text: str,
    pages: list[int],
    headings: list[tuple[int, str]],
    tokenizer: Any,
    *,
    max_tokens: int,
    overlap: int,
    ocr_pages: Collection[int] = (),
) -> list[NewChunk]:
    """Chunks of at most `max_tokens` word pieces (markers not counted). Chunks on one of
    `ocr_pages` are marked `ocr` (their text was recognised from an image)."""
    if max_tokens < 8:
        raise ValueError("max_tokens must be at least 8")
    overlap = max(0, min(overlap, max_tokens // 2))
    line_starts = [i for i, ch in enumerate(text) if ch == "\n"]
    chunks: list[NewChunk] = []
    for seg in segments(text, pages, headings):
        for w0, w1 in _windows(text, seg.start, seg.end, WINDOW_CHARS):
            piece = text[w0:w1]
            if not any(ch.isalnum() for ch in piece):
                continue
            encoding = tokenizer.encode(piece, add_special_tokens=False)
            offsets: list[tuple[int, int]] = encoding.offsets
            tokens: list[str] = encoding.tokens
            n = len(tokens)
            if n == 0:
                continue
            score = [_boundary_score(piece, offsets, tokens, j) for j in range(n + 1)]
            start = 0
            while start < n:
                end = _pick_end(score, start, n, max_tokens)
                c0 = w0 + offsets[start][0]
                c1 = w0 + offsets[end - 1][1]
                body = text[c0:c1]
                if any(ch.isalnum() for ch in body):
                    chunks.append(
                        NewChunk(
                            seq=len(chunks),
                            text=body,
                            heading=seg.heading,
                            page=seg.page,
                            char_start=c0,
                            char_end=c1,
                            line_start=bisect.bisect_right(line_starts, c0 - 1) + 1,
                            line_end=bisect.bisect_right(line_starts, c1 - 1) + 1,
                            tokens=end - start,
                            ocr=seg.page in ocr_pages,
                        )
                    )
                if end >= n:
                    break
                start = _pick_next_start(score, start, end, overlap)
    return chunks


def _windows(text: str, start: int, end: int, size: int) -> Iterator[tuple[int, int]]:
    """`text[start:end]` in stretches of at most `size` characters, each cut at the last
    paragraph break, line end, sentence end or space in its second half (a hard cut only where
    there is none). The word pieces and their scores are held for one stretch at a time: as one
    piece, a 2 MB single-line file took 300 MB to chunk, and a 20 MB one 2.5 GB (issue 34).
    A chunk never spans two stretches, so one extra cut in `size` characters is the cost."""
    while end - start > size:
        cut = start + size
        for sep in ("\n\n", "\n", ". ", " "):
            k = text.rfind(sep, start + size // 2, cut)
            if k != -1:
                cut = k + len(sep)
                break
        yield start, cut
        start = cut
    yield start, end


def _boundary_score(text: str, offsets: list[tuple[int, int]], tokens: list[str], j: int) -> int:
    """How good a place it is to cut before token j: 0 never (inside a word), 1 between words,
    2 after a sentence or a line, 3 at a paragraph break."""
    if j == 0 or j >= len(tokens):
        return 3
    if tokens[j].startswith("##"):
        return 0
    gap = text[offsets[j - 1][1] : offsets[j][0]]
    if "\n\n" in gap:
        return 3
    if "\n" in gap or (tokens[j - 1] in (".", "!", "?", ";", ":") and gap):
        return 2
    return 1


def _pick_end(score: list[int], start: int, n: int, max_tokens: int) -> int:
    limit = start + max_tokens
    if limit >= n:
        return n
    best, best_score = 0, -1
    for j in range(limit, start + max_tokens // 2, -1):  # latest good boundary wins ties
        if score[j] > best_score:
            best, best_score = j, score[j]
            if best_score == 3:
                break
    if best_score <= 0:  # one giant "word" (a hash, base64): cut anywhere
        return limit
    return best


def _pick_next_start(score: list[int], start: int, end: int, overlap: int) -> int:
    """Start the next chunk up to `overlap` tokens back, at the best boundary there (earliest
    of equals: more shared context). Falls back to no overlap inside one giant word."""
    if overlap == 0:
        return end
    best, best_score = end, 0
    for j in range(max(start + 1, end - overlap), end):
        if score[j] > best_score:
            best, best_score = j, score[j]
    return best
