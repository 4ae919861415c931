"""Model output (Markdown) to HTML that is safe to show: nothing in it can load anything.

- Raw HTML in the text is escaped, not interpreted (markdown-it with html=False).
- Images become text: "[image: alt — url]". Nothing is ever fetched for them.
- Links become their text followed by the address in plain text; they are not anchors, so a
  click does nothing and the user sees where a link would go before copying it.
- Fenced code is highlighted by Pygments with inline styles (Qt's rich text has no class CSS).

An unfinished answer is rendered as it stands: an open code fence renders as code so far.
"""

from __future__ import annotations

import html
from functools import lru_cache
from typing import Any

from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import TextLexer, get_lexer_by_name
from pygments.util import ClassNotFound


def _highlight(code: str, lang: str, _attrs: Any) -> str:
    try:
        lexer = get_lexer_by_name(lang.strip()) if lang.strip() else TextLexer()
    except ClassNotFound:
        lexer = TextLexer()
    formatter = _formatter()
    background = formatter.style.background_color or "#f6f8fa"
    # Starting with <pre tells markdown-it the block is wrapped already.
    return (
        f'<pre style="background:{background}; padding:6px;">'
        f"{highlight(code, lexer, formatter)}</pre>"
    )


@lru_cache(maxsize=1)
def _formatter() -> HtmlFormatter:
    return HtmlFormatter(noclasses=True, style="friendly", nowrap=True)


def _image(_renderer: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    alt = "".join(child.content for child in (token.children or []))
    src = token.attrGet("src") or ""
    return html.escape(f"[image: {alt or 'no description'} — {src}]")


def _link_open(_renderer: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
    env.setdefault("links", []).append((str(tokens[idx].attrGet("href") or ""), idx))
    return ""


def _link_close(_renderer: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
    if not env.get("links"):
        return ""
    href, start = env["links"].pop()
    text = "".join(t.content for t in tokens[start + 1 : idx])
    if not href or text.strip() == href:  # an autolink already shows its address
        return ""
    return f" <small>({html.escape(href)})</small>"  # the theme's own text colour


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    md = MarkdownIt(
        "commonmark",
        # breaks: a single line break stays one, as the writer meant it: Shift+Enter in a
        # question, a poem's lines in an answer (CommonMark would join them into one line).
        {
            "html": False,
            "linkify": False,
            "typographer": False,
            "breaks": True,
            "highlight": _highlight,
        },
    )
    md.enable("table")
    md.enable("strikethrough")
    md.add_render_rule("image", _image)
    md.add_render_rule("link_open", _link_open)
    md.add_render_rule("link_close", _link_close)
    # Autolinks (<https://…>) go through link_open/close as well.
    return md


def render(text: str) -> str:
    """HTML for `text`, safe for QTextBrowser."""
    return _parser().render(text, {})
