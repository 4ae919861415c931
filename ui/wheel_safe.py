"""Spin boxes and drop-downs for long scrolling forms: the mouse wheel over an unfocused one
scrolls the form, as users expect, instead of changing (and, in Settings, saving) its value.
Qt's defaults give such a control the focus and the value on any wheel turn over it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QSpinBox, QWidget


def _prepare(widget: QWidget) -> None:
    widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # a wheel turn does not focus it


def _wheel(widget: QWidget, event: QWheelEvent, handle: Callable[[QWheelEvent], None]) -> None:
    if widget.hasFocus():
        handle(event)
    else:
        event.ignore()  # it goes on to the scroll area around the form


class SpinBox(QSpinBox):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _prepare(self)

    def wheelEvent(self, event: QWheelEvent) -> None:
        _wheel(self, event, super().wheelEvent)


class DoubleSpinBox(QDoubleSpinBox):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _prepare(self)

    def wheelEvent(self, event: QWheelEvent) -> None:
        _wheel(self, event, super().wheelEvent)


class ComboBox(QComboBox):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _prepare(self)

    def wheelEvent(self, event: QWheelEvent) -> None:
        _wheel(self, event, super().wheelEvent)
