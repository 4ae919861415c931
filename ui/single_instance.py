"""One Hearth window per data folder.

A lock file in the data folder says who owns it; Qt's QLockFile takes over a lock whose process
is gone (a kill leaves one behind). A local socket named after the folder lets a second launch
ask the first to come to the front, then exit.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from PySide6.QtCore import QLockFile, QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

log = logging.getLogger(__name__)


def server_name(folder: Path) -> str:
    digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return f"hearth-{digest}"


class SingleInstance(QObject):
    """Lives on the GUI thread. Emits `activated()` when another launch asks for the window."""

    activated = Signal()

    def __init__(self, folder: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = server_name(folder)
        self.lock = QLockFile(str(folder / "hearth.lock"))
        self.lock.setStaleLockTime(0)  # stale only when its process is gone, never by age
        self.server: QLocalServer | None = None

    def claim(self) -> bool:
        """True if this process now owns the folder; False if another one does (it has been
        asked to come to the front)."""
        if not self.lock.tryLock(200):
            self._wake_owner()
            return False
        QLocalServer.removeServer(self.name)  # a socket left behind by a killed owner
        self.server = QLocalServer(self)
        self.server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not self.server.listen(self.name):
            log.warning("single-instance socket unavailable: %s", self.server.errorString())
        self.server.newConnection.connect(self._on_connection)
        return True

    def _wake_owner(self) -> None:
        socket = QLocalSocket()
        socket.connectToServer(self.name)
        if socket.waitForConnected(1000):
            socket.write(b"activate\n")
            socket.waitForBytesWritten(1000)
            socket.disconnectFromServer()
            log.info("another Hearth owns this data folder; asked it to come forward")
        else:
            log.warning("another Hearth holds the lock but does not answer")

    def _on_connection(self) -> None:
        assert self.server is not None
        while self.server.hasPendingConnections():
            socket = self.server.nextPendingConnection()
            socket.disconnected.connect(socket.deleteLater)
        log.info("a second launch asked for the window")
        self.activated.emit()

    def release(self) -> None:
        if self.server is not None:
            self.server.close()
        self.lock.unlock()
