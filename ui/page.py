"""What every page of the main window shares: the services, the one error presenter, and a
`closing` flag that `shutdown()` sets so late queued signals start no new work."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import QPushButton, QWidget

from ui.services import Services

# Embedders by the names people see, with what choosing one means.
EMBEDDER_NAMES = {
    "bundled:all-minilm-l6-v2": "all-MiniLM-L6-v2 (faster to index)",
    "bundled:bge-small-en-v1.5-int8": "bge-small-en-v1.5 (int8)",
}


class Page(QWidget):
    """Base of the four pages; lives on the GUI thread."""

    def __init__(
        self, services: Services, show_error: Callable[[str], None], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.services = services
        self.show_error = show_error
        self.closing = False

    def shutdown(self) -> None:
        """The window is closing: stop background work (subclasses add theirs)."""
        self.closing = True


def button(text: str, accessible_name: str, on_click: Callable[[], Any]) -> QPushButton:
    """A push button with the name screen readers announce, wired to its action."""
    widget = QPushButton(text)
    widget.setAccessibleName(accessible_name)
    widget.clicked.connect(on_click)
    return widget
