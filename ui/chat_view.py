"""The transcript of one chat: Markdown with highlighted code, rendered while it streams.

A view, not a store: it shows the messages it is given and the text of the answer in
progress, and emits what the user asked for (copy, regenerate, edit, open a source). Nothing in
it loads a resource: `loadResource` refuses everything, and the renderer never makes an image
or a link a browser would follow.
"""

from __future__ import annotations

import dataclasses
import html
from typing import Any

from PySide6.QtCore import QEvent, QTimer, QUrl, Signal
from PySide6.QtGui import QPalette, QResizeEvent
from PySide6.QtWidgets import QTextBrowser, QWidget

from engine.chats import Message
from engine.documents.citing import place
from ui.markdown_render import render

WELCOME = """
<h2>Welcome to Hearth</h2>
<p>Everything here runs on this computer. Nothing you type, and nothing in your documents,
is sent anywhere.</p>
<p>A small model (SmolLM2 135M) comes with Hearth, so you can start right away: type below
and press <b>Enter</b> (<b>Shift+Enter</b> for a new line, <b>Esc</b> to stop an answer).</p>
<p>Larger, smarter models are on the <b>Models</b> page (Ctrl+2), with what fits this computer.
To ask about your own files, drop them on this chat or use <b>Attach documents</b> below: every
answer then lists the file, page and exact passage it came from. <b>F1</b> lists the keyboard
shortcuts.</p>
"""

READABLE_CHARACTERS = 76  # about 72 characters of text, plus the document's own margins

STATUS_NOTE = {
    "stopped": "stopped",
    "interrupted": "interrupted: Hearth was closed while this answer was being written",
    "failed": "failed",
}


class ChatView(QTextBrowser):
    """Lives on the GUI thread.

    Signals: copy_requested(int), regenerate_requested(int), edit_requested(int),
    record_requested(int) with a message id; source_requested(int, int) with a message id and
    a source number.
    """

    copy_requested = Signal(int)
    regenerate_requested = Signal(int)
    edit_requested = Signal(int)
    record_requested = Signal(int)
    source_requested = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.setAccessibleName("Conversation")
        self.anchorClicked.connect(self._on_anchor)
        self.resource_requests: list[str] = []  # what something tried to load (always refused)
        self._messages: list[Message] = []
        self._live_id: int | None = None
        self._live_text = ""
        self._cache: dict[tuple[int, str, str, bool], str] = {}
        self._busy = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(50)  # at most 20 renders a second while streaming
        self._timer.timeout.connect(self._render)
        # The margins that keep lines readable are painted as the page, not as the window.
        self.setBackgroundRole(QPalette.ColorRole.Base)
        self.setAutoFillBackground(True)
        self._render()

    # -- what to show ----------------------------------------------------------------------

    def set_messages(self, messages: list[Message], busy: bool = False) -> None:
        self._messages = list(messages)
        shown = {m.id for m in self._messages}
        self._cache = {k: v for k, v in self._cache.items() if k[0] in shown}
        self._live_id = None
        self._busy = busy
        self._render()

    def begin_answer(self, message: Message) -> None:
        """Stream into `message`: the row already shown with its id, else a new last row
        (the store may have the empty row before the view hears of it: never show it twice)."""
        if all(m.id != message.id for m in self._messages):
            self._messages.append(message)
        self._live_id = message.id
        self._live_text = ""
        self._busy = True
        self._schedule()

    def append_text(self, text: str) -> None:
        self._live_text += text
        self._schedule()

    def replace_message(self, message: Message) -> None:
        self._messages = [message if m.id == message.id else m for m in self._messages]
        if message.id == self._live_id and message.status != "streaming":
            self._live_id = None
        self._schedule()

    def attach_sources(self, sources: list[dict[str, Any]], notes: list[str]) -> None:
        """Show the sources of the answer in progress as soon as they are known."""
        self._messages = [
            dataclasses.replace(m, sources=sources, notes=notes) if m.id == self._live_id else m
            for m in self._messages
        ]
        self._schedule()

    @property
    def message_ids(self) -> list[int]:
        """The messages shown, top to bottom."""
        return [m.id for m in self._messages]

    @property
    def streaming_text(self) -> str:
        """The answer in progress, as received so far."""
        return self._live_text if self._live_id is not None else ""

    def set_busy(self, busy: bool) -> None:
        self._busy = busy
        self._schedule()

    def stop_rendering(self) -> None:
        self._timer.stop()

    def flush(self) -> None:
        """Render now (tests and the end of an answer)."""
        self._timer.stop()
        self._render()

    # -- rendering -------------------------------------------------------------------------

    def _schedule(self) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def _render(self) -> None:
        bar = self.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 4
        if not self._messages:
            self.setHtml(WELCOME)
            self._centre()
            return
        last_user = max((m.id for m in self._messages if m.role == "user"), default=None)
        last_answer = self._messages[-1].id if self._messages[-1].role == "assistant" else None
        parts = [
            self._message_html(m, m.id == last_user, m.id == last_answer) for m in self._messages
        ]
        position = bar.value()
        self.setHtml("".join(parts))
        self._centre()
        bar.setValue(bar.maximum() if at_bottom else position)

    def _message_html(self, m: Message, last_user: bool, last_answer: bool) -> str:
        live = m.id == self._live_id
        text = self._live_text if live else m.content
        if live:
            body = render(text, self._dark) if text else "<p><i>…</i></p>"
        else:
            key = (m.id, m.status, text, self._dark)
            if key not in self._cache:
                self._cache[key] = render(text, self._dark)
            body = self._cache[key]
        who = "You" if m.role == "user" else html.escape(m.model or "Hearth")
        note = STATUS_NOTE.get(m.status, "")
        head = f"<p><b>{who}</b>" + (f" <i>({note})</i>" if note and not live else "") + "</p>"
        actions: list[str] = []
        if not live:
            # Words that read as actions (no underline), not tiny links.
            link = '<a href="hearth:{}:{}" style="text-decoration:none"><b>{}</b></a>'
            actions.append(link.format("copy", m.id, "Copy"))
            if m.role == "user" and not self._busy:
                actions.append(link.format("edit", m.id, "Edit and resend"))
            if m.role == "assistant" and last_answer and not self._busy:
                actions.append(link.format("regenerate", m.id, "Regenerate"))
            if m.role == "assistant" and m.sources:
                actions.append(link.format("record", m.id, "Save record"))
        if m.role == "assistant" and m.stats and not live:
            s = m.stats
            actions.append(
                f'<span style="color:{self._muted}">{s.get("generated_tokens", 0)} tokens · '
                f"{s.get('tokens_per_s', 0):.1f} tokens/s</span>"
            )
        foot = f"<p>{'&nbsp;&nbsp;&nbsp;'.join(actions)}</p>" if actions else ""
        content = head + body + self._sources_html(m) + self._grounding_html(m) + foot
        if m.role == "user":
            # The question in a tinted card, set apart from the answers around it.
            tint = self.palette().color(QPalette.ColorRole.AlternateBase).name()
            return (
                f'<table width="100%" cellpadding="10" cellspacing="0" bgcolor="{tint}">'
                f"<tr><td>{content}</td></tr></table><p></p>"
            )
        return content + "<p></p>"

    @property
    def _dark(self) -> bool:
        return self.palette().color(QPalette.ColorRole.Base).lightness() < 128

    @property
    def _muted(self) -> str:
        """Secondary text (stats, scores): the theme's placeholder colour, readable on it."""
        return self.palette().color(QPalette.ColorRole.PlaceholderText).name()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._centre()

    def _centre(self) -> None:
        """Lines of at most ~72 characters, centred: on a wide window, full-width lines were
        too long to read. Done with the document's own side margins, so it wraps to the
        view and never scrolls sideways (setHtml resets them: called after each render)."""
        if not self.isVisible():
            return  # the first resize, when shown, centres it
        readable = self.fontMetrics().averageCharWidth() * READABLE_CHARACTERS
        side = max(0, (self.viewport().width() - readable) // 2)
        root = self.document().rootFrame()
        frame = root.frameFormat()
        if frame.leftMargin() != side or frame.rightMargin() != side:
            frame.setLeftMargin(side)
            frame.setRightMargin(side)
            root.setFrameFormat(frame)

    @property
    def text_width(self) -> int:
        """How wide the transcript's lines may be, in pixels."""
        frame = self.document().rootFrame().frameFormat()
        return int(self.viewport().width() - frame.leftMargin() - frame.rightMargin())

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and hasattr(self, "_timer"):
            self._schedule()  # the colours written into the HTML follow the theme

    def _sources_html(self, m: Message) -> str:
        muted = self._muted
        if not m.sources and not m.notes:
            return ""
        rows = []
        for s in m.sources:
            where = place(s.get("page"), s.get("line_start"), s.get("line_end"), bool(s.get("ocr")))
            section = f" · {html.escape(s['heading'])}" if s.get("heading") else ""
            quote = " ".join(str(s.get("quote", "")).split())
            short = quote if len(quote) <= 280 else quote[:277] + "…"
            rows.append(
                f'<li><a href="hearth:source:{m.id}:{s["n"]}">[{s["n"]}] '
                f"{html.escape(s.get('file') or s['path'])}, {where}</a>{section} "
                f'<span style="color:{muted}">(similarity {s.get("similarity", 0):.2f})</span>'
                f"<br><i>“{html.escape(short)}”</i></li>"
            )
        notes = "".join(f"<li><i>{html.escape(n)}</i></li>" for n in m.notes)
        title = "<p><b>Sources</b></p>" if m.sources else ""
        return f'{title}<ul style="font-size:small">{"".join(rows)}{notes}</ul>'

    def _grounding_html(self, m: Message) -> str:
        """The check of the answer's sentences against its sources: a summary, then each
        sentence that is not fully backed, marked."""
        checked = m.grounding
        if not checked:
            return ""
        counts = checked.get("counts", {})
        marked = [
            s
            for s in checked.get("sentences", [])
            if s.get("verdict") in ("partial", "unsupported") or s.get("citation_problem")
        ]
        colour = "#b45309" if counts.get("unsupported") else self._muted
        rows = []
        for s in marked:
            what = {
                "unsupported": "Not in the sources",
                "partial": "Only partly in the sources",
            }.get(s.get("verdict"), "Citation")
            why = f" ({html.escape(s['citation_problem'])})" if s.get("citation_problem") else ""
            short = " ".join(str(s.get("text", "")).split())[:240]
            rows.append(f"<li><b>{what}</b>{why}: “{html.escape(short)}”</li>")
        evidence = ""
        if checked.get("show_evidence", checked.get("weak")) and checked.get("evidence"):
            quotes = "".join(
                f'<li><a href="hearth:source:{m.id}:{e["source"]}">[{e["source"]}]</a> '
                f"“{html.escape(' '.join(str(e['text']).split()))}”</li>"
                for e in checked["evidence"]
            )
            note = checked.get("evidence_note") or "quoted as written, not by the model"
            evidence = (
                '<p style="font-size:small"><b>Evidence from the sources</b> '
                f"({html.escape(note)})</p>"
                f'<ul style="font-size:small">{quotes}</ul>'
            )
        return (
            evidence + f'<p style="font-size:small;color:{colour}">'
            f"<b>Checked against the sources:</b> {html.escape(checked.get('summary', ''))}</p>"
            + (f'<ul style="font-size:small">{"".join(rows)}</ul>' if rows else "")
        )

    # -- links -----------------------------------------------------------------------------

    def _on_anchor(self, url: QUrl) -> None:
        parts = url.toString().split(":")
        if len(parts) < 3 or parts[0] != "hearth":
            return  # nothing else is ever a link here; ignore rather than open
        kind, ids = parts[1], [int(p) for p in parts[2:] if p.isdigit()]
        if kind == "copy" and ids:
            self.copy_requested.emit(ids[0])
        elif kind == "edit" and ids:
            self.edit_requested.emit(ids[0])
        elif kind == "regenerate" and ids:
            self.regenerate_requested.emit(ids[0])
        elif kind == "record" and ids:
            self.record_requested.emit(ids[0])
        elif kind == "source" and len(ids) == 2:
            self.source_requested.emit(ids[0], ids[1])

    def loadResource(self, kind: int, url: QUrl | str) -> Any:
        self.resource_requests.append(url.toString() if isinstance(url, QUrl) else url)
        return None
