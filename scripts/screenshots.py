"""Screenshots of the real window for docs/ and the README: run under Xvfb (xcb platform).

    xvfb-run -s "-screen 0 1280x800x24" .venv/bin/python scripts/screenshots.py light
    xvfb-run -s "-screen 0 1280x800x24" .venv/bin/python scripts/screenshots.py dark

For a high-DPI check, scale 2 on a screen twice the size, into another folder:

    SCREENSHOTS_OUT=/tmp/hidpi QT_SCALE_FACTOR=2 \
        xvfb-run -s "-screen 0 2560x1600x24" .venv/bin/python scripts/screenshots.py light

It builds a fresh data folder, asks the bundled model a question, indexes two sample files and
asks about them, then grabs the X screen once per page. Dark shots are named NAME-dark.png.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = Path(os.environ.get("SCREENSHOTS_OUT") or ROOT / "docs" / "screenshots")


def main(theme: str = "light") -> None:
    suffix = "" if theme == "light" else f"-{theme}"
    home = Path(tempfile.mkdtemp())
    os.environ["HEARTH_HOME"] = str(home / "home")
    from engine import network

    network.install("app")  # as app/gui.py does
    from PySide6.QtCore import QThreadPool
    from PySide6.QtWidgets import QApplication, QScrollArea

    from app import compose
    from tests.app.test_cli_docs import make_docs
    from ui.main_window import MainWindow

    app = QApplication(sys.argv)
    services = compose.build(isolate_documents=True)
    services.settings.set("ui.theme", theme)
    win = MainWindow(services)
    win.setGeometry(0, 0, 1280, 800)
    win.show()
    win.start()

    def wait(cond, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while not cond() and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.01)

    def shot(name: str) -> None:
        for _ in range(30):
            app.processEvents()
            time.sleep(0.02)
        screen = app.primaryScreen()
        screen.grabWindow(0).save(str(OUT / f"{name}{suffix}.png"))
        print("saved", OUT / f"{name}{suffix}.png")

    wait(lambda: win.chat.model_state.endswith("ready") and not win.chat.busy())
    wait(lambda: win.chat.first_run.suggestion.text().endswith("."), 60)
    shot("welcome")
    win.chat.first_run.close_button.click()
    chat = win.chat
    services.chats.configure(chat.chat_id, sampling={"temperature": 0.0, "max_tokens": 200})
    chat.composer.setPlainText("Write a Python function that reverses a string, with an example.")
    chat.send()
    wait(lambda: not chat.busy())
    shot("chat")

    win.nav.setCurrentRow(2)
    docs = make_docs(home / "Documents")
    done: list[str] = []
    win.documents.indexed.connect(done.append)
    win.documents.create_collection("Work", [str(docs)])
    wait(lambda: bool(done))
    wait(lambda: win.documents.files.rowCount() == 2, 30)
    shot("documents")

    win.nav.setCurrentRow(0)
    chat.new_chat()
    services.chats.configure(
        chat.chat_id, collections=["Work"], sampling={"temperature": 0.0, "max_tokens": 60}
    )
    chat.composer.setPlainText("What is the vault code word?")
    chat.send()
    wait(lambda: not chat.busy())
    shot("chat-with-sources")

    win.nav.setCurrentRow(1)
    wait(lambda: bool(win.models.cards), 60)
    shot("models")
    win.nav.setCurrentRow(3)
    shot("settings")
    page = win.settings_page
    page.editors["api.enabled"].click()  # the API server, on: its address and token
    wait(lambda: "Listening" in page.api_panel.status.text(), 30)
    page.findChild(QScrollArea).ensureWidgetVisible(page.api_panel)
    shot("settings-api")
    page.editors["api.enabled"].click()
    wait(lambda: "off" in page.api_panel.status.text(), 30)
    import contextlib
    import socket

    from ui.network_activity import NetworkActivityDialog

    with contextlib.suppress(OSError):  # one blocked attempt, on purpose, to show a row
        socket.getaddrinfo("telemetry.example.net", 443)
    win.network.refresh()
    dialog = NetworkActivityDialog(win.network.attempts, win)
    dialog.resize(1000, 300)
    dialog.show()
    shot("network-activity")
    dialog.close()
    win.close()
    QThreadPool.globalInstance().waitForDone(30_000)
    services.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "light")
