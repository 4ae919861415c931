"""Model output (Markdown) to HTML that is safe to show: nothing in it can load anything.

- Raw HTML in the text is escaped, not interpreted (markdown-it with html=False).
- Images become text: "[image: alt — url]". Nothing is ever fetched for them.
- Links become their text followed by the address in plain text; they are not anchors, so a
  click does nothing and the user sees where a link would go before copying it.
- Fenced code is highlighted by Pygments with inline styles (Qt's rich text has no class CSS),
  a light or a dark style to match the theme, and the block's text colour set explicitly:
  tokens a style leaves uncoloured otherwise took the theme's text colour (light on light).

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

# (Pygments style, the text colour for tokens it leaves uncoloured). Chosen for contrast:
# every colour of these two reads at 4.5:1 or better on its background ("friendly", used
# before, drew comments at 2.6:1); tests/ui/test_theme.py checks it.
CODE_STYLES = {False: ("default", "#1f2328"), True: ("monokai", "#f8f8f2")}


def _highlighter(dark: bool) -> Any:
    formatter = HtmlFormatter(noclasses=True, style=CODE_STYLES[dark][0], nowrap=True)
    background = formatter.style.background_color or ("#0d1117" if dark else "#f6f8fa")
    text = CODE_STYLES[dark][1]

    def _highlight(code: str, lang: str, _attrs: Any) -> str:
        try:
            lexer = get_lexer_by_name(lang.strip()) if lang.strip() else TextLexer()
        except ClassNotFound:
            lexer = TextLexer()
        # Starting with <pre tells markdown-it the block is wrapped already.
        return (
            f'<pre style="background:{background}; color:{text}; padding:6px;">'
            f"{highlight(code, lexer, formatter)}</pre>"
        )

    return _highlight


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


@lru_cache(maxsize=2)
def _parser(dark: bool) -> MarkdownIt:
    md = MarkdownIt(
        "commonmark",
        # breaks: a single line break stays one, as the writer meant it: Shift+Enter in a
        # question, a poem's lines in an answer (CommonMark would join them into one line).
        {
            "html": False,
            "linkify": False,
            "typographer": False,
            "breaks": True,
            "highlight": _highlighter(dark),
        },
    )
    md.enable("table")
    md.enable("strikethrough")
    md.add_render_rule("image", _image)
    md.add_render_rule("link_open", _link_open)
    md.add_render_rule("link_close", _link_close)
    # Autolinks (<https://…>) go through link_open/close as well.
    return md


def render(text: str, dark: bool = False) -> str:
    """HTML for `text`, safe for QTextBrowser; code coloured for a dark theme when `dark`."""
    return _parser(dark).render(text, {})
