"""Icons from the Lucide set (ISC licence, ui/icons/LICENSE), tinted to the theme: the SVGs
draw in `currentColor`, which is replaced by the palette's text colour, then rendered at
several sizes so they stay crisp at 2x."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QIcon, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer

FOLDER = Path(__file__).resolve().parent / "icons"
SIZES = (16, 20, 24, 32, 48, 64)


@lru_cache(maxsize=128)
def icon(name: str, colour: str) -> QIcon:
    """The icon `name` (a file in ui/icons) drawn in `colour` (#rrggbb)."""
    svg = (FOLDER / f"{name}.svg").read_text(encoding="utf-8").replace("currentColor", colour)
    renderer = QSvgRenderer(QByteArray(svg.encode("utf-8")))
    out = QIcon()
    for size in SIZES:
        pixmap = QPixmap(size, size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        renderer.render(painter)
        painter.end()
        out.addPixmap(pixmap)
    return out
