"""What the user sees of the offline promise: the network indicator and its list, and text from
documents or the model that can neither fetch nor act."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from engine import network
from engine.chats import Message
from ui.chat_view import ChatView
from ui.network_activity import NetworkActivityDialog

ROOT = Path(__file__).resolve().parents[2]


def test_the_status_bar_counts_attempts_from_every_process_and_lists_them(window, qtbot) -> None:
    assert window.network.text() == "0 connections since start"
    probe = (
        "from engine import network; network.install('documents worker')\n"
        "import socket\ntry: socket.getaddrinfo('telemetry.example.net', 443)\n"
        "except OSError: pass"
    )
    subprocess.run([sys.executable, "-c", probe], cwd=ROOT, timeout=120, check=True)
    qtbot.waitUntil(
        lambda: window.network.text() == "1 connection since start (1 blocked)", timeout=10_000
    )
    dialog = NetworkActivityDialog(window.network.attempts, window)
    qtbot.addWidget(dialog)
    row = [dialog.table.item(0, c).text() for c in range(5)]
    assert row[1:4] == ["blocked", "lookup telemetry.example.net:443", "documents worker"]
    assert row[4].startswith("not started by you")


def test_text_from_documents_or_the_model_cannot_make_action_links(qtbot) -> None:
    view = ChatView()
    qtbot.addWidget(view)
    hostile = (
        '[Regenerate](hearth:regenerate:99) <a href="hearth:edit:99">Edit</a> '
        "[open](file:///etc/passwd) ![x](http://203.0.113.9/pixel.png)"
    )
    source = {
        "n": 1,
        "path": "/docs/a.pdf",
        "file": "a.pdf",
        "page": 2,
        "similarity": 0.5,
        "quote": '<a href="hearth:copy:99">copy me</a> <img src="http://203.0.113.9/q">',
    }
    view.set_messages(
        [
            Message(1, 1, 1, "user", hostile, "done", 0.0),
            Message(2, 1, 2, "assistant", hostile, "done", 0.0, "m", sources=[source]),
        ]
    )
    links = re.findall(r'href="([^"]*)"', view.toHtml())
    # only the view's own actions: copy and edit the question; copy, regenerate, save the
    # record of, and the source of the answer
    assert sorted(links) == sorted(
        [
            "hearth:copy:1",
            "hearth:edit:1",
            "hearth:copy:2",
            "hearth:regenerate:2",
            "hearth:record:2",
            "hearth:source:2:1",
        ]
    )
    assert view.resource_requests == [] and network.read_log() == []


def test_delete_all_my_data_asks_then_leaves_nothing_and_closes(window, qtbot, monkeypatch) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QPushButton

    from engine import erase

    paths = window.services.paths
    window.services.chats.add_message(window.services.chats.create().id, "user", "private")
    answers = [False, True]  # Cancel first, then "Delete everything"
    asked: list[str] = []

    def confirm(_title: str, text: str, _action: str) -> bool:
        asked.append(text)
        return answers.pop(0)

    monkeypatch.setattr(window, "confirm", confirm)
    window.nav.setCurrentRow(3)
    button = next(
        b
        for b in window.settings_page.findChildren(QPushButton)
        if b.accessibleName() == "Delete all my data"
    )
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(asked) == 1, timeout=10_000)
    assert (paths.data / "chats.sqlite").exists() and not window.erasing  # cancelled
    with qtbot.waitSignal(window.erased, timeout=30_000):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert "chats, document indexes and other data" in asked[0]
    assert erase.leftovers(paths) == []
    window.close()
    assert erase.leftovers(paths) == []  # closing wrote nothing back (window state, settings)


def test_encryption_without_a_keyring_opens_the_window_and_writes_no_clear_history(
    qtbot, monkeypatch, hearth_home, tmp_path
) -> None:
    import keyring.core

    from app import compose
    from engine.settings import Settings
    from tests.ui.conftest import close, ready
    from ui.main_window import MainWindow

    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    keyring.core.init_backend()
    settings = Settings.load(hearth_home / "config" / "settings.json")
    settings.set("privacy.encrypt_chats", True)
    settings.save()
    services = compose.build(isolate_documents=True)
    win = MainWindow(services)
    qtbot.addWidget(win)
    win.show()
    win.start()
    try:
        qtbot.waitUntil(lambda: ready(win), timeout=60_000)
        assert win.banner_box.isVisible() and "no keyring" in win.banner.text()
        assert "memory only" in win.banner.text()
        assert not (services.paths.data / "chats.sqlite").exists()
    finally:
        close(qtbot, win)
        services.close()
        monkeypatch.undo()
        keyring.core.init_backend()


def test_turning_encryption_on_without_a_keyring_is_refused_at_once(
    window, qtbot, monkeypatch
) -> None:
    import keyring.core

    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    keyring.core.init_backend()
    try:
        box = window.settings_page.editors["privacy.encrypt_chats"]
        box.setChecked(True)
        qtbot.waitUntil(lambda: window.banner_box.isVisible(), timeout=10_000)
        assert "no keyring" in window.banner.text()
        assert not box.isChecked()
        assert window.services.settings.get("privacy.encrypt_chats") is False
    finally:
        monkeypatch.undo()
        keyring.core.init_backend()


def test_a_chat_exports_from_the_sidebar_to_markdown(window, qtbot, tmp_path) -> None:
    store = window.services.chats
    chat = store.create(title="Export me")
    store.add_message(chat.id, "user", "Hello there")
    target = tmp_path / "export me.md"
    with qtbot.waitSignal(window.chat.status, timeout=10_000) as status:
        window.chat.export_chat(chat.id, target)
    assert status.args == [f"Chat exported to {target}."]
    assert "# Export me" in target.read_text() and "Hello there" in target.read_text()
