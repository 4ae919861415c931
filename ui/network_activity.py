"""The egress log at a glance: a status-bar button ("0 connections since start") and a dialog
listing every outbound attempt by any Hearth process, allowed (a download you started, a
request to a model server you or IT configured) or refused, with host, time and purpose."""

from __future__ import annotations

import time

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine import network
from ui.services import Services

POLL_MS = 2000


class NetworkIndicator(QToolButton):
    """Status-bar button on the GUI thread. Polls the egress log (one stat when nothing
    changed) and shows the count of attempts since the app started; click for the list."""

    def __init__(self, services: Services, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.attempts: list[network.Attempt] = []
        self.follower = network.LogFollower(network.log_file(), services.started)
        self.setAutoRaise(True)
        self.setAccessibleName("Network activity")
        self.clicked.connect(self.show_log)
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.refresh)
        self.timer.start(POLL_MS)
        self.refresh()

    def refresh(self) -> None:
        self.attempts += self.follower.poll()
        refused = sum(not a.allowed for a in self.attempts)
        n = len(self.attempts)
        text = f"{n} connection{'s' if n != 1 else ''} since start"
        if refused:
            text += f" ({refused} blocked)"
        self.setText(text)
        self.setToolTip(
            "Hearth works offline. Only a download you start, or a model server you "
            "configured, may use the network; anything else is blocked. All are listed "
            "here: click for the list."
        )

    def stop(self) -> None:
        self.timer.stop()

    def show_log(self) -> None:
        self.refresh()
        NetworkActivityDialog(self.attempts, self.window()).exec()


class NetworkActivityDialog(QDialog):
    """Modal list of the attempts since start, newest first."""

    def __init__(self, attempts: list[network.Attempt], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Network activity")
        self.resize(760, 360)
        layout = QVBoxLayout(self)
        if attempts:
            n = len(attempts)
            summary = (
                f"{n} outbound attempt{'s' if n != 1 else ''} since Hearth started: "
                f"{sum(a.allowed for a in attempts)} for downloads you started or servers "
                "you configured, "
                f"{sum(not a.allowed for a in attempts)} blocked."
            )
        else:
            summary = (
                "No connection beyond this computer since Hearth started. Hearth uses "
                "the network only for a download you start or a model server you "
                "configured."
            )
        label = QLabel(summary)
        label.setWordWrap(True)
        layout.addWidget(label)
        self.table = QTableWidget(len(attempts), 5)
        self.table.setAccessibleName("Outbound attempts")
        self.table.setHorizontalHeaderLabels(["Time", "Result", "Attempt", "Process", "Purpose"])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        for row, a in enumerate(reversed(attempts)):
            host = f"{a.host}:{a.port}" if a.port else a.host
            cells = (
                time.strftime("%H:%M:%S", time.localtime(a.time)),
                "allowed" if a.allowed else "blocked",
                f"{a.kind} {host}",
                a.process,
                a.purpose,
            )
            for column, value in enumerate(cells):
                self.table.setItem(row, column, QTableWidgetItem(value))
        self.table.resizeColumnsToContents()
        layout.addWidget(self.table, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
