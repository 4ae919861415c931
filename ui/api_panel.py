"""The API server's part of the settings page: whether it runs, where, and its token.

The server starts and stops off the GUI thread (binding is quick, but stopping waits for
answers in flight to be cancelled). The token is shown masked, can be revealed, copied, and
replaced; a replaced token stops working at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QVBoxLayout, QWidget

from engine.api import token
from engine.api.server import is_loopback
from ui.adapter import run_call
from ui.page import button
from ui.services import Services

KEYS = ("api.enabled", "api.port", "api.host")


class ApiPanel(QWidget):
    """Lives on the GUI thread; `sync()` brings the server in line with the settings."""

    def __init__(
        self, services: Services, show_error: Callable[[str], None], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.services = services
        self.show_error = show_error
        self._busy = False  # a start or stop is running in the background
        self._again = False  # settings changed meanwhile: sync once more when it ends
        self._restart = False  # the address changed while running
        self.status = QLabel("The API server is off.")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.token_note = QLabel("A new token is in use; the old one no longer works.")
        self.token_note.setVisible(False)  # until the user replaces the token
        self.token = QLineEdit()
        self.token.setReadOnly(True)
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setAccessibleName("API token")
        self.reveal = button("Show", "Show the API token", self._toggle_reveal)
        copy = button("Copy", "Copy the API token", self._copy)
        rotate = button("New token", "Replace the API token", self._rotate)
        rotate.setToolTip("Make a new token; programs using the old one must be given the new")
        row = QHBoxLayout()
        row.addWidget(QLabel("Token"))
        row.addWidget(self.token, 1)
        for widget in (self.reveal, copy, rotate):
            row.addWidget(widget)
        note = QLabel(
            "OpenAI-compatible: point a client at the address above with this token "
            "as its API key. Off by default; requests from web pages are refused; "
            "each request is logged without its content (api-audit.jsonl in the "
            "logs folder)."
        )
        note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.status)
        layout.addLayout(row)
        layout.addWidget(self.token_note)
        layout.addWidget(note)
        paths = services.paths
        run_call(self, lambda: token.read_or_create(paths), self.token.setText, self.show_error)

    # -- the server ----------------------------------------------------------------------------

    def setting_changed(self, key: str) -> None:
        if key in KEYS:
            # A new port or address applies by stopping the server and starting it again.
            self._restart = self._restart or (key != "api.enabled" and self._running())
            self.sync()

    def sync(self) -> None:
        """Start or stop the server to match the settings."""
        if self._busy:
            self._again = True
            return
        wanted = bool(self.services.settings.get("api.enabled"))
        if self._running() and (self._restart or not wanted):
            self._again, self._restart = self._restart, False  # start again once stopped
            self._run(lambda: self.services.api_server().stop(), lambda _r: self._stopped())
        elif wanted and not self._running():
            self._run(lambda: self.services.api_server().start(), self._started)

    def _running(self) -> bool:
        return bool(self.services.api_running)

    def _run(self, call: Callable[[], Any], done: Callable[[Any], None]) -> None:
        self._busy = True
        self.status.setText("Starting…" if not self._running() else "Stopping…")

        def failed(message: str) -> None:
            self.status.setText(f"Not running: {message}")
            self.show_error(message)

        task = run_call(self, call, done, failed)
        task.finished.connect(self._finished)

    def _finished(self) -> None:
        self._busy = False
        if self._again:
            self._again = False
            self.sync()

    def _started(self, url: str) -> None:
        where = (
            "this computer only"
            if is_loopback(self.services.api_server().host)
            else "reachable from other computers, as your organisation's policy allows"
        )
        self.status.setText(f"Listening on <b>{url}</b> ({where})")

    def _stopped(self) -> None:
        self.status.setText("The API server is off.")

    # -- the token -----------------------------------------------------------------------------

    def _toggle_reveal(self) -> None:
        hidden = self.token.echoMode() == QLineEdit.EchoMode.Password
        self.token.setEchoMode(QLineEdit.EchoMode.Normal if hidden else QLineEdit.EchoMode.Password)
        self.reveal.setText("Hide" if hidden else "Show")

    def _copy(self) -> None:
        QGuiApplication.clipboard().setText(self.token.text())

    def _rotate(self) -> None:
        paths = self.services.paths
        run_call(self, lambda: token.rotate(paths), self._rotated, self.show_error)

    def _rotated(self, value: str) -> None:
        self.token.setText(value)
        self.token_note.setVisible(True)
