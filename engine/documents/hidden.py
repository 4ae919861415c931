"""Text a reader of the document cannot see: the usual carrier of instructions planted for a
model ("ignore previous instructions…"). Found where the format allows, and reported in the
file's note (the documents page and `hearth docs list` show it).

Two kinds, treated differently:
- certainly invisible (PDF render mode 3/7, text under 1 pt, Word's hidden runs, HTML
  `display:none`, `visibility:hidden`, `hidden`, comments): kept out of the index, so it can
  never be retrieved or quoted as a source the user cannot find on the page;
- white text: invisible on a white page but readable on a dark band, so it is indexed and
  flagged for the user to check.
A white background is assumed; text hidden behind images or off the page is not detected.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

INVISIBLE = "invisible text"
TINY = "text under 1 pt"
WHITE = "white text"
HIDDEN_RUN = "text formatted as hidden"
HIDDEN_ELEMENT = "hidden element"
COMMENT = "comment"
KEPT = frozenset({WHITE})  # indexed, flagged; every other kind is left out
MIN_POINTS = 1.0


@dataclass(frozen=True)
class Finding:
    kind: str
    text: str
    page: int | None = None  # 1-based, where the format has pages


def note(findings: list[Finding], earlier: str | None = None) -> str | None:
    """One line for the file's note: what was found, where, and what was done with it."""
    findings = [f for f in findings if f.text.strip()]
    if not findings:
        return earlier
    parts = []
    for f in findings[:3]:
        sample = " ".join(f.text.split())
        sample = sample if len(sample) <= 60 else sample[:57] + "…"
        where = f" on page {f.page}" if f.page else ""
        done = "indexed, check it" if f.kind in KEPT else "not indexed"
        parts.append(f"{f.kind}{where} ({done}): “{sample}”")
    more = f"; and {len(findings) - 3} more" if len(findings) > 3 else ""
    text = "hidden text found: " + "; ".join(parts) + more
    return f"{earlier}; {text}" if earlier else text


# -- PDF --------------------------------------------------------------------------------------


def pdf_page_text(page: Any, number: int) -> tuple[str, list[Finding]]:
    """The page's text without certainly invisible text, and what was hidden on it."""
    state: dict[str, Any] = {"white": False, "mode": 0}
    saved: list[dict[str, Any]] = []
    shown: dict[str, Any] = {}
    findings: list[Finding] = []

    def before(op: bytes, args: list[Any], _cm: Any, _tm: Any) -> None:
        if op == b"q":
            saved.append(dict(state))
        elif op == b"Q" and saved:
            state.update(saved.pop())
        elif op in (b"g", b"rg", b"k", b"sc", b"scn"):
            state["white"] = _is_white(op, args)
        elif op == b"Tr" and args:
            state["mode"] = _number(args[0])
        elif op in (b"Tj", b"TJ", b"'", b'"'):
            shown.update(state)  # pypdf may hand the text over after later operators

    def visit(text: str, cm: list[float], tm: list[float], _font: Any, size: float) -> None:
        if not text.strip():
            return
        state_then = shown or state
        scale = math.hypot(tm[2], tm[3]) * math.hypot(cm[2], cm[3])
        if state_then["mode"] in (3, 7):
            kind = INVISIBLE
        elif size * scale < MIN_POINTS:
            kind = TINY
        elif state_then["white"]:
            kind = WHITE
        else:
            return
        findings.append(Finding(kind, text.strip(), number))

    text = page.extract_text(visitor_operand_before=before, visitor_text=visit) or ""
    for f in findings:
        if f.kind not in KEPT and len(f.text) >= 4:
            text = text.replace(f.text, "", 1)
    return text, findings


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return -1.0


def _is_white(op: bytes, args: list[Any]) -> bool:
    values = [_number(a) for a in args if not isinstance(a, str) or not a.startswith("/")]
    if op == b"k" or len(values) == 4:
        return len(values) == 4 and all(abs(v) < 0.01 for v in values)  # CMYK: no ink
    return bool(values) and len(values) in (1, 3) and all(v > 0.99 for v in values)


# -- DOCX -------------------------------------------------------------------------------------


def docx_paragraph_text(paragraph: Any) -> tuple[str, list[Finding]]:
    """The paragraph's text without runs marked hidden or under 1 pt, and what was hidden."""
    text = paragraph.text
    findings = []
    for run in paragraph.runs:
        font = run.font
        kind = None
        if font.hidden:
            kind = HIDDEN_RUN
        elif font.size is not None and font.size.pt < MIN_POINTS:
            kind = TINY
        elif (
            font.color is not None
            and font.color.type is not None
            and str(font.color.rgb or "").upper() == "FFFFFF"
        ):
            kind = WHITE
        if kind and run.text.strip():
            findings.append(Finding(kind, run.text))
            if kind not in KEPT:
                text = text.replace(run.text, "", 1)
    return text, findings


# -- HTML and Markdown ------------------------------------------------------------------------

_HIDDEN_STYLE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|"
    r"font-size\s*:\s*0*\.?0+(px|pt|em|rem|%)?\s*(;|$)",
    re.I,
)
_WHITE_STYLE = re.compile(
    r"(^|;|\s)color\s*:\s*(#fff(fff)?|white|rgb\(\s*255\s*,\s*255\s*,"
    r"\s*255\s*\))\s*(;|$)",
    re.I,
)


def html_element_kind(attrs: list[tuple[str, str | None]]) -> str | None:
    """HIDDEN_ELEMENT, WHITE or None for an element's attributes."""
    named = {k.lower(): v or "" for k, v in attrs}
    if "hidden" in named:
        return HIDDEN_ELEMENT
    style = named.get("style", "")
    if _HIDDEN_STYLE.search(style):
        return HIDDEN_ELEMENT
    if _WHITE_STYLE.search(style):
        return WHITE
    return None


_COMMENT = re.compile(r"<!--(.*?)-->", re.S)


def strip_comments(text: str) -> tuple[str, list[Finding]]:
    """Markdown: remove HTML comments, keeping their line breaks so line numbers stay right."""
    findings = [
        Finding(COMMENT, m.group(1).strip())
        for m in _COMMENT.finditer(text)
        if len(m.group(1).split()) >= 3
    ]  # a few-word marker is not a message
    return _COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), text), findings
