"""Model servers from the settings page, against llama-cpp-python's real server on loopback: add
one with its token, see its model, pick it in the chat and get an answer written there; and a
machine policy that turns servers off, shown locked with its reason."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.model_servers import LlamaServer
from tests.ui.conftest import ready
from ui.main_window import MainWindow

TOKEN = "team-secret-3"


@pytest.fixture
def llama(bundled_gguf: Path) -> Iterator[LlamaServer]:
    with LlamaServer(bundled_gguf, api_key=TOKEN) as server:
        yield server


def test_add_a_server_pick_its_model_and_get_an_answer(
    qtbot, keyring_file: None, llama: LlamaServer, window: MainWindow
) -> None:
    panel = window.settings_page.servers_panel
    assert "No model servers" in panel.status.text()
    panel.url.setText(llama.url)
    panel.token.setText(TOKEN)
    panel.add_button.click()
    assert panel.token.text() == ""  # not kept in the widget
    qtbot.waitUntil(lambda: panel.list.count() == 1 and "smollm2" in panel.list.item(0).text())
    assert "asked" in panel.list.item(0).text()

    model = f"remote:127.0.0.1:{llama.port}/smollm2"
    picker = window.chat.model_picker
    qtbot.waitUntil(lambda: picker.findData(model) >= 0, timeout=10_000)
    assert picker.itemText(picker.findData(model)) == f"smollm2 on 127.0.0.1:{llama.port}"
    if window.chat.chat_id is None:
        window.chat.new_chat()
    picker.setCurrentIndex(picker.findData(model))
    picker.activated.emit(picker.findData(model))  # as a user's pick does
    qtbot.waitUntil(lambda: "on the server" in window.chat.model_state, timeout=60_000)
    qtbot.waitUntil(lambda: ready(window), timeout=60_000)
    assert "on the server 127.0.0.1" in window.chat.model_state
    window.chat.composer.setPlainText("Say hello.")
    window.chat.send()
    qtbot.waitUntil(lambda: ready(window) and bool(window.chat.last_speed), timeout=120_000)
    chat = window.services.chats.chat(window.chat.chat_id)
    answer = window.services.chats.messages(chat.id)[-1]
    assert chat.model == model and answer.status == "done" and answer.content.strip()

    settings_text = window.services.paths.settings_file.read_text()
    assert llama.url in settings_text and TOKEN not in settings_text


def test_a_policy_that_turns_servers_off_shows_them_locked(
    qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.ui.conftest import window_under_policy

    reason = "Example Corp: nothing leaves this laptop"
    with window_under_policy(
        qtbot, tmp_path, monkeypatch, reason, {"remote.allowed": False}
    ) as win:
        panel = win.settings_page.servers_panel
        assert not panel.add_button.isEnabled() and not panel.url.isEnabled()
        assert "locked off by your organisation" in panel.lock.text()
        assert panel.lock.toolTip() == reason and not panel.lock.isHidden()
        assert reason in win.settings_page.policy_note.text()  # said once, at the top
        assert not win.settings_page.editors["remote.allowed"].isEnabled()
