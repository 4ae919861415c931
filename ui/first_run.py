"""The first-run welcome, above the chat until it is closed: what Hearth is, that nothing
leaves the computer, and the best catalog model for this computer, one click from
downloading (or, where downloads are off, from importing a model pack). It never blocks the
chat: the bundled model answers meanwhile, and closing it is remembered (ui.welcomed)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from engine import models
from engine.units import size_text


class FirstRunPanel(QFrame):
    """Lives on the GUI thread. Emits download_requested(str) with a catalog id,
    pack_requested() and closed(); `offer(row, refusal)` fills in the suggestion."""

    download_requested = Signal(str)
    pack_requested = Signal()
    closed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAccessibleName("Welcome")
        self.model_id: str | None = None
        title = QLabel("<h2>Welcome to Hearth</h2>")
        about = QLabel(
            "Private AI on this computer. Nothing you type, and nothing in your documents, is "
            "sent anywhere: the status bar counts connections, and it stays at 0. You can ask "
            "right away: a small model (SmolLM2 135M) comes with Hearth. It is quick, and weak "
            "at facts."
        )
        about.setWordWrap(True)
        self.suggestion = QLabel("Finding the model that suits this computer best…")
        self.suggestion.setWordWrap(True)
        self.suggestion.setAccessibleName("Suggested model")
        self.download_button = QPushButton("Download")
        self.download_button.setVisible(False)
        self.download_button.clicked.connect(self._download)
        self.pack_button = QPushButton("Import a model pack…")
        self.pack_button.setAccessibleName("Import a model pack")
        self.pack_button.setVisible(False)
        self.pack_button.clicked.connect(self.pack_requested.emit)
        self.close_button = QPushButton("Start with the small model")
        self.close_button.setAccessibleName("Close the welcome")
        self.close_button.clicked.connect(self.closed.emit)
        buttons = QHBoxLayout()
        buttons.addWidget(self.download_button)
        buttons.addWidget(self.pack_button)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        box = QVBoxLayout(self)
        box.addWidget(title)
        box.addWidget(about)
        box.addWidget(self.suggestion)
        box.addLayout(buttons)

    def offer(self, row: models.CatalogRow | None, refusal: str | None) -> None:
        """Show the suggested download, or why there is none and the offline way in."""
        if refusal is not None:
            self.suggestion.setText(
                f"{refusal} Larger models can come as a model pack from your IT department."
            )
            self.pack_button.setVisible(True)
            return
        if row is None:
            self.suggestion.setText(
                "No larger catalog model fits this computer; the small one is the one to use."
            )
            return
        self.model_id = row.model.id
        size = ("about " if not row.model.size_exact else "") + size_text(row.model.size_bytes)
        self.suggestion.setText(
            f"For better answers, this computer can run <b>{row.model.title}</b> ({size}, "
            f"licence {row.model.license_spdx}): {row.fit.explanation}"
        )
        self.download_button.setText(f"Download {row.model.name} ({size})")
        self.download_button.setAccessibleName(f"Download {row.model.title}")
        self.download_button.setVisible(True)

    def _download(self) -> None:
        if self.model_id is not None:
            self.download_requested.emit(self.model_id)
