"""A newcomer's first minutes, in the real window on a real X server (test_newcomer_path.py
starts Xvfb and runs this as its own process, QT_QPA_PLATFORM=xcb): first run, ask, stop,
regenerate, edit, new chat, drop a folder on the chat, ask about it, open a source.

Input goes through Qt's test functions to the real widgets (keys typed into the message box,
buttons clicked). Prints one JSON line: each step's outcome, for the test to check."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any


def main(docs: str, shots: str) -> int:
    from engine import network

    network.install("app")  # as app/gui.py does
    from PySide6.QtCore import QMimeData, QPoint, Qt, QThreadPool, QUrl
    from PySide6.QtGui import QDropEvent
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from app import compose
    from ui.main_window import MainWindow

    app = QApplication(sys.argv)
    services = compose.build(isolate_documents=True)
    win = MainWindow(services)
    win.resize(1100, 720)
    win.show()
    win.start()
    chat = win.chat
    out: dict[str, Any] = {"platform": app.platformName()}

    def wait(cond: Any, timeout: float = 120) -> bool:
        deadline = time.monotonic() + timeout
        while not cond() and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.01)
        return bool(cond())

    def shot(name: str) -> None:
        win.grab().save(str(Path(shots) / f"{name}.png"))

    def ask(text: str) -> None:
        chat.composer.setFocus()
        QTest.keyClicks(chat.composer, text)
        QTest.keyClick(chat.composer, Qt.Key.Key_Return)

    def messages() -> list[Any]:
        return services.chats.messages(chat.chat_id)

    try:
        win.activateWindow()  # no window manager here to give it the keyboard
        out["active"] = wait(win.isActiveWindow, 10)
        out["welcome shown"] = chat.first_run.isVisible()
        out["ready"] = wait(lambda: chat.model_state.endswith("ready"), 120)
        shot("1-first-run")

        ask("What is the capital of France?")
        copies: list[int] = []
        deadline = time.monotonic() + 120
        while chat.busy() and time.monotonic() < deadline:  # look while it streams
            app.processEvents()
            copies.append(chat.view.toPlainText().count("SmolLM2 135M Instruct (Q4_1)"))
            time.sleep(0.02)
        out["first answer"] = messages()[-1].content
        out["answer shown at most once while streaming"] = max(copies or [1]) <= 1
        shot("2-first-answer")

        services.chats.configure(
            chat.chat_id, sampling={"temperature": 0.8, "seed": 3, "max_tokens": 3000}
        )
        ask("Write a very long story about a lighthouse keeper.")
        wait(lambda: len(chat.view.streaming_text) > 200, 120)
        QTest.keyClick(chat.composer, Qt.Key.Key_Escape)
        wait(lambda: not chat.busy(), 30)
        stopped = messages()[-1]
        out["stopped"] = (stopped.status, (stopped.stats or {}).get("generated_tokens", 0))

        old = messages()[-1].id
        chat.regenerate()
        wait(lambda: len(chat.view.streaming_text) > 50 or not chat.busy(), 120)
        out["old answer gone while regenerating"] = old not in chat.view.message_ids
        QTest.keyClick(chat.composer, Qt.Key.Key_Escape)
        wait(lambda: not chat.busy(), 30)

        question = next(m for m in reversed(messages()) if m.role == "user")
        chat.view.edit_requested.emit(question.id)  # the "Edit and resend" link
        chat.composer.clear()
        ask("What is the capital of Italy?")
        wait(lambda: not chat.busy(), 120)
        out["edited"] = [m.content for m in messages() if m.role == "user"][-1]

        QTest.keyClick(win, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
        out["new chat empty"] = messages() == []

        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(docs)])
        drop = QDropEvent(
            QPoint(50, 50),
            Qt.DropAction.CopyAction,
            mime,
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier,
        )
        indexed: list[str] = []
        win.documents.indexed.connect(indexed.append)
        chat.dropEvent(drop)  # Qt takes a drop only from a real drag
        out["indexed"] = wait(lambda: bool(indexed), 240)
        out["chip"] = chat.documents_chip.text()
        services.chats.configure(chat.chat_id, sampling={"temperature": 0.0, "max_tokens": 48})
        ask("What is the vault code word?")
        wait(lambda: not chat.busy(), 120)
        answer = messages()[-1]
        out["sources"] = [(s["file"], s.get("page")) for s in answer.sources]
        shot("3-answer-with-sources")

        from ui.source_viewer import SourceViewer

        win.clear_error()
        chat.view.source_requested.emit(answer.id, 1)  # the source's link

        def viewers() -> list[SourceViewer]:
            return [v for v in chat.findChildren(SourceViewer) if v.isVisible()]

        wait(lambda: bool(viewers()) and viewers()[0].loaded, 30)
        viewer = viewers()[0] if viewers() else None
        out["open source"] = {
            "page": viewer.page if viewer else None,
            "boxes": len(viewer.boxes) if viewer else 0,
            "title": viewer.title.text() if viewer else "",
            "error": win.banner.text() if win.banner_box.isVisible() else "",
        }
        shot("4-source")
        if viewer:
            viewer.close()
    finally:
        win.close()
        QThreadPool.globalInstance().waitForDone(30_000)
        services.close()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    raise SystemExit(main(sys.argv[1], sys.argv[2]))
