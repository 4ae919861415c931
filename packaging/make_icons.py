"""Render packaging/linux/hearth.svg, the one icon source, into the icon files the Windows
installer and the macOS app need: hearth.ico (16-256 px) and hearth.icns (16-1024 px).

    python packaging/make_icons.py OUT_DIR
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

SVG = Path(__file__).resolve().parent / "linux" / "hearth.svg"
ICO_SIZES = [(s, s) for s in (16, 24, 32, 48, 64, 128, 256)]


def render_png(size: int) -> bytes:
    """The SVG drawn at size x size by Qt's SVG renderer, as PNG bytes."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QBuffer, QIODevice, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([])
    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        raise SystemExit(f"make_icons: cannot read {SVG}")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    renderer.render(painter)
    painter.end()
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(buffer.data())


def main(out_dir: str) -> None:
    from PIL import Image

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    big = Image.open(io.BytesIO(render_png(1024))).convert("RGBA")
    big.save(out / "hearth.ico", sizes=ICO_SIZES)
    big.save(out / "hearth.icns")  # Pillow writes every ICNS size up to the image's own
    print(out / "hearth.ico")
    print(out / "hearth.icns")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
