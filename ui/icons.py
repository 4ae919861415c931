"""Icons from the Lucide set (ISC licence, ui/icons/LICENSE), tinted to the theme: the SVGs
draw in `currentColor`, which is replaced by the palette's text colour. They are drawn when
shown, at the size shown, so they stay crisp at any scale and cost nothing at start."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from PySide6.QtCore import QByteArray, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QIcon, QIconEngine, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer

FOLDER = Path(__file__).resolve().parent / "icons"


class _Tinted(QIconEngine):
    """Draws one SVG in one colour, and in another where the icon sits on a selection."""

    def __init__(self, name: str, colour: str, selected: str) -> None:
        super().__init__()
        self.args = (name, colour, selected)
        source = (FOLDER / f"{name}.svg").read_text(encoding="utf-8")
        self.normal = QSvgRenderer(QByteArray(source.replace("currentColor", colour).encode()))
        self.chosen = QSvgRenderer(QByteArray(source.replace("currentColor", selected).encode()))

    def paint(self, painter: QPainter, rect: QRect, mode: QIcon.Mode, state: QIcon.State) -> None:
        renderer = self.chosen if mode == QIcon.Mode.Selected else self.normal
        renderer.render(painter, QRectF(rect))

    def pixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QPixmap:
        # Qt's default starts from an unfilled pixmap: buttons showed noise around the icon.
        out = QPixmap(size)
        out.fill(Qt.GlobalColor.transparent)
        painter = QPainter(out)
        self.paint(painter, QRect(0, 0, size.width(), size.height()), mode, state)
        painter.end()
        return out

    def clone(self) -> QIconEngine:
        return _Tinted(*self.args)


@lru_cache(maxsize=128)
def icon(name: str, colour: str, selected: str | None = None) -> QIcon:
    """The icon `name` (a file in ui/icons) drawn in `colour` (#rrggbb), and in `selected`
    where it sits on a selection (Qt's own tint of a selected icon made it unreadable)."""
    return QIcon(_Tinted(name, colour, selected or colour))
