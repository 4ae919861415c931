"""The model servers' part of the settings page: add a team's server with its token, see what
each offers (as last asked), refresh, set a token, remove.

Every request runs off the GUI thread (`run_call`); the token goes to the OS keyring through
the engine and is never shown again. When the machine policy fixes the list or turns servers
off, the controls are disabled and say so, with the policy's reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine import remote
from engine.errors import HearthError
from ui.adapter import run_call
from ui.page import button
from ui.services import Services


class ServersPanel(QWidget):
    """Lives on the GUI thread. Emits `models_changed()` after the servers' models changed (an
    add, a refresh, a removal), so the chat's model picker can list them."""

    models_changed = Signal()

    def __init__(
        self, services: Services, show_error: Callable[[str], None], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.services = services
        self.show_error = show_error
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.list = QListWidget()
        self.list.setAccessibleName("Model servers")
        self.list.setMaximumHeight(120)
        self.url = QLineEdit()
        self.url.setPlaceholderText("https://gpu.example.org:8080/v1")
        self.url.setAccessibleName("Server address")
        self.token = QLineEdit()
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("token (kept in the keyring)")
        self.token.setAccessibleName("Server token")
        self.add_button = button("Add", "Add the model server", self._add)
        self.token_button = button("Set token", "Set the selected server's token", self._set_token)
        self.remove_button = button("Remove", "Remove the selected server", self._remove)
        self.refresh_button = button("Refresh", "Ask the servers what they offer", self.refresh)
        entry = QHBoxLayout()
        entry.addWidget(self.url, 2)
        entry.addWidget(self.token, 1)
        entry.addWidget(self.add_button)
        actions = QHBoxLayout()
        for widget in (self.refresh_button, self.token_button, self.remove_button):
            actions.addWidget(widget)
        actions.addStretch(1)
        self.lock = QLabel()
        self.lock.setWordWrap(True)
        self.lock.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        note = QLabel(
            "An OpenAI-compatible server on another computer (llama.cpp's server, vLLM, "
            "Ollama, LM Studio, another Hearth). Its models then appear in the chat's model "
            "picker. Only the conversation (and, in a document chat, the passages found "
            "here) is sent, only to that server; documents and chats stay on this computer."
        )
        note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.status)
        layout.addWidget(self.list)
        layout.addLayout(actions)
        layout.addLayout(entry)
        layout.addWidget(self.lock)
        layout.addWidget(note)
        self._apply_locks()
        self.show_cached()

    # -- state -------------------------------------------------------------------------------

    def _apply_locks(self) -> None:
        settings = self.services.settings
        why = remote.servers.refusal(settings)
        fixed = settings.locked.get("remote.servers")
        editable = why is None and "remote.servers" not in settings.locked
        for widget in (self.url, self.add_button, self.remove_button):
            widget.setEnabled(editable)
        for widget in (self.token, self.token_button, self.refresh_button):
            widget.setEnabled(why is None)
        # The policy's reason is said once, at the top of the page; here, on hover.
        policy = next(
            (
                settings.locked[k]
                for k in ("privacy.offline_mode", "remote.allowed", "remote.servers")
                if k in settings.locked
            ),
            None,
        )
        if why is not None and policy is None:
            self.lock.setText(why)  # the user's own setting (offline mode, servers off)
        elif why is not None:
            self.lock.setText("Model servers: locked off by your organisation.")
        elif fixed:
            self.lock.setText("The list of servers is set by your organisation.")
        self.lock.setToolTip(policy or "")
        self.lock.setVisible(why is not None or bool(fixed))

    def setting_changed(self, key: str) -> None:
        if key.startswith("remote.") or key == "privacy.offline_mode":
            self._apply_locks()
            self.show_cached()

    def show_cached(self) -> None:
        services = self.services
        run_call(
            self,
            lambda: remote.cached(services.settings, services.paths),
            self._show,
            self.show_error,
        )

    def refresh(self) -> None:
        services = self.services
        self.status.setText("Asking the servers…")
        self.refresh_button.setEnabled(False)
        run_call(
            self,
            lambda: remote.refresh(services.settings, services.paths),
            self._refreshed,
            self._failed,
        )

    def _refreshed(self, statuses: list[Any]) -> None:
        self._show(statuses)
        self._apply_locks()
        self.models_changed.emit()

    def _failed(self, message: str) -> None:
        self._apply_locks()
        self.show_cached()
        self.show_error(message)

    def _show(self, statuses: list[Any]) -> None:
        # No servers (the usual case): no empty list and no buttons that would act on nothing.
        for widget in (self.list, self.refresh_button, self.token_button, self.remove_button):
            widget.setVisible(bool(statuses))
        self.list.clear()
        for s in statuses:
            if s.problem:
                line = f"{s.server.url} — {s.problem}"
            else:
                when = time.strftime("%H:%M", time.localtime(s.checked)) if s.checked else "never"
                names = ", ".join(m.model for m in s.models) or "no models"
                line = f"{s.server.url} — {names} (asked {when})"
            item = QListWidgetItem(line)
            item.setData(Qt.ItemDataRole.UserRole, s.server.url)
            item.setToolTip(line)
            self.list.addItem(item)
        self.status.setText(
            f"{len(statuses)} model server{'s' if len(statuses) != 1 else ''} configured."
            if statuses
            else "No model servers: Hearth uses only this computer."
        )

    def _selected(self) -> str | None:
        item = self.list.currentItem()
        if item is None:
            self.show_error("Select a server in the list first.")
            return None
        return str(item.data(Qt.ItemDataRole.UserRole))

    # -- actions -----------------------------------------------------------------------------

    def _add(self) -> None:
        services = self.services
        url, secret = self.url.text().strip(), self.token.text().strip()
        try:  # the settings change here, on the GUI thread, as every other setting does
            server = remote.servers.add(services.settings, url)
        except HearthError as exc:
            self.show_error(exc.user_message)
            return

        def add() -> list[Any]:  # the keyring and the server, off the GUI thread
            if secret:
                remote.servers.set_token(server, secret)
            return remote.refresh(services.settings, services.paths)

        self.token.clear()  # not kept in the widget once handed over
        self.url.clear()
        self.status.setText("Adding the server and asking what it offers…")
        run_call(self, add, self._refreshed, self._failed)

    def _set_token(self) -> None:
        url = self._selected()
        if url is None:
            return
        services, secret = self.services, self.token.text().strip()
        self.token.clear()

        def set_token() -> list[Any]:
            remote.servers.set_token(remote.servers.parse(url), secret or None)
            return remote.refresh(services.settings, services.paths)

        run_call(self, set_token, self._refreshed, self._failed)

    def _remove(self) -> None:
        url = self._selected()
        if url is None:
            return
        services = self.services
        server = remote.servers.remove(services.settings, url)  # settings: on the GUI thread

        def remove() -> list[Any]:  # the keyring may be slow (D-Bus): off the GUI thread
            if server is not None:
                remote.servers.forget_token(server)
            return remote.cached(services.settings, services.paths)

        run_call(self, remove, self._refreshed, self._failed)
