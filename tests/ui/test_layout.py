"""The window is usable from 900x600: every page fits its width, no button is cut short
("port model pac"), nothing scrolls sideways, and the catalog cards stay inside their view."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QComboBox, QPushButton, QScrollArea, QTextBrowser, QWidget

from ui.main_window import MainWindow


def problems(page: QWidget) -> list[str]:
    found = []
    for button in page.findChildren(QPushButton):
        if button.isVisible() and button.width() < button.sizeHint().width():
            found.append(f"button “{button.text()}” cut to {button.width()} px")
    for box in page.findChildren(QComboBox):  # the model picker read "SmolLM2 135M Instruct (C"
        if box.isVisible() and box.width() < box.sizeHint().width():
            found.append(f"{box.accessibleName()} “{box.currentText()}” cut to {box.width()} px")
    for view in page.findChildren(QTextBrowser):  # the transcript, centred, wraps to fit
        if view.isVisible() and view.horizontalScrollBar().maximum() > 0:
            found.append(f"{view.accessibleName()} scrolls sideways")
    for area in page.findChildren(QScrollArea):
        if area.isVisible() and area.horizontalScrollBar().maximum() > 0:
            found.append(f"{area.accessibleName() or 'a scroll area'} scrolls sideways")
        inner = area.widget()
        for child in inner.findChildren(QWidget) if inner is not None else []:
            outside = child.geometry().right() > area.viewport().width()
            if child.isVisible() and child.parentWidget() is inner and outside:
                found.append(f"{child.accessibleName() or type(child).__name__} clipped")
    return found


@pytest.mark.parametrize("size", [(900, 600), (1100, 720)])
def test_every_page_fits_the_window(qtbot, window: MainWindow, size: tuple[int, int]) -> None:
    window.resize(*size)
    qtbot.waitUntil(lambda: (window.width(), window.height()) == size, timeout=2_000)
    window.nav.setCurrentRow(1)
    qtbot.waitUntil(lambda: len(window.models.cards) > 5, timeout=30_000)
    report = {}
    for row, page in enumerate(
        (window.chat, window.models, window.documents, window.settings_page)
    ):
        window.nav.setCurrentRow(row)
        qtbot.wait(100)  # layouts settle
        report[type(page).__name__] = problems(page)
    assert report == {name: [] for name in report}
