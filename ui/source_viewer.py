"""A source opened inside Hearth at its quote: a PDF's page drawn with the quote boxed in
yellow, or a document's text scrolled to the quote, highlighted. Drawing and reading happen in
a child process (engine.documents.source_view); this window only shows the result. "Open in
default app" beside it says whether that worked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from engine.documents.citing import place
from ui.adapter import run_call
from ui.open_file import NoViewer, open_source

HIGHLIGHT = QColor(255, 214, 0, 110)


class SourceViewer(QDialog):
    """Lives on the GUI thread. `source` is a message's source dict (path, page, quote,
    char_start, ...). `loaded` is True once the page or text is on screen."""

    def __init__(
        self,
        source: dict[str, Any],
        show: Callable[[dict[str, Any]], Any],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.source = source
        self.loaded = False
        self.page: int | None = None
        self.boxes: list[tuple[int, int, int, int]] = []
        self.setWindowTitle(f"{source.get('file') or Path(str(source['path'])).name} · Hearth")
        self.resize(960, 800)
        self.title = QLabel(f"<b>[{source.get('n')}] {source.get('file')}</b>, loading…")
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.title.setWordWrap(True)
        self.page_view = QLabel()
        self.page_view.setAccessibleName("The page, with the quote highlighted")
        self.page_area = QScrollArea()
        self.page_area.setWidget(self.page_view)
        self.page_area.setWidgetResizable(False)
        self.page_area.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.text_view = QTextBrowser()
        self.text_view.setAccessibleName("The document's text, with the quote highlighted")
        self.text_view.setOpenLinks(False)
        self.text_view.setVisible(False)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.open_button = QPushButton("Open in default app")
        self.open_button.setAccessibleName("Open the file in its default application")
        self.open_button.clicked.connect(self.open_outside)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.open_button)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.page_area, 1)
        layout.addWidget(self.text_view, 1)
        layout.addLayout(buttons)

        is_pdf = Path(str(source["path"])).suffix.lower() == ".pdf" and source.get("page")
        request = {
            "kind": "pdf" if is_pdf else "text",
            "path": source["path"],
            "quote": source.get("quote") or "",
            "page": source.get("page"),
            "char_start": source.get("char_start"),
        }
        run_call(self, lambda: show(request), self._show, self._failed)

    def _heading(self, found: bool) -> str:
        s = self.source
        where = place(s.get("page"), s.get("line_start"), s.get("line_end"), bool(s.get("ocr")))
        note = (
            "the quoted passage is highlighted"
            if found
            else "the quoted passage is no longer in the file as it is now"
        )
        return f"<b>[{s.get('n')}] {s.get('file')}</b>, {where} · {note}"

    def _show(self, shown: Any) -> None:
        if hasattr(shown, "png"):
            image = QImage.fromData(shown.png)
            painter = QPainter(image)
            for x0, y0, x1, y1 in shown.boxes:
                painter.fillRect(x0 - 2, y0 - 2, x1 - x0 + 4, y1 - y0 + 4, HIGHLIGHT)
            painter.end()
            self.page_view.setPixmap(QPixmap.fromImage(image))
            self.page_view.resize(image.size())
            self.page, self.boxes = shown.page, list(shown.boxes)
            if shown.boxes:
                self.page_area.ensureVisible(shown.boxes[0][0], shown.boxes[0][1], 50, 200)
            pages = f" (page {shown.page} of {shown.pages})"
            self.title.setText(self._heading(shown.found) + pages)
        else:
            self.page_area.setVisible(False)
            self.text_view.setVisible(True)
            self.text_view.setPlainText(shown.text)
            if shown.found:
                cursor = QTextCursor(self.text_view.document())
                cursor.setPosition(shown.start)
                cursor.setPosition(shown.end, QTextCursor.MoveMode.KeepAnchor)
                mark = QTextCharFormat()
                mark.setBackground(HIGHLIGHT)
                cursor.mergeCharFormat(mark)
                self.text_view.setTextCursor(cursor)
                self.text_view.ensureCursorVisible()
            self.title.setText(self._heading(shown.found))
        self.loaded = True

    def _failed(self, message: str) -> None:
        self.title.setText(f"<b>{self.source.get('file')}</b> cannot be shown here.")
        self.status.setText(f"{message} “Open in default app” may still open it.")
        self.loaded = True

    def selected_text(self) -> str:
        return self.text_view.textCursor().selectedText()

    def open_outside(self) -> None:
        path = str(self.source["path"])
        try:
            how = open_source(path, self.source.get("page"))
        except FileNotFoundError:
            self.status.setText(f"“{path}” is no longer there; it was moved or deleted.")
        except NoViewer:
            self.status.setText("No application on this computer opens this kind of file.")
        else:
            self.status.setText(f"Opened with {how}.")
