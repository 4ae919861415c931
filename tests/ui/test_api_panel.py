"""The API server from the settings page: turned on and off, its token shown and replaced,
sharing the window's one model; and turned on by a machine policy."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import openai
import pytest

from ui.main_window import MainWindow

CHAT = "bundled:smollm2-135m-instruct-q4_1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_settings_page_runs_the_server_on_the_windows_model(qtbot, window: MainWindow) -> None:
    page = window.settings_page
    panel = page.api_panel
    window.nav.setCurrentRow(3)
    port = free_port()
    assert page.apply("api.port", port)
    qtbot.waitUntil(lambda: panel.token.text().startswith("hearth-"), timeout=10_000)
    assert panel.token.echoMode() == panel.token.EchoMode.Password
    url = f"http://127.0.0.1:{port}/v1"
    page.editors["api.enabled"].click()
    qtbot.waitUntil(lambda: url in panel.status.text(), timeout=60_000)
    gui_worker = window.services.runtime.worker_pid
    with openai.OpenAI(
        base_url=url, api_key=panel.token.text(), max_retries=0, timeout=120
    ) as client:
        listed = {m.id: m for m in client.models.list()}
        assert (listed[CHAT].model_extra or {})["loaded"] is True  # the window's model
        out = client.chat.completions.create(
            model=CHAT, max_tokens=8, messages=[{"role": "user", "content": "Hello"}]
        )
        assert out.choices[0].message.content
    assert window.services.runtime.worker_pid == gui_worker, "one model, shared"

    old = panel.token.text()
    panel.reveal.click()
    assert panel.token.echoMode() == panel.token.EchoMode.Normal
    panel._rotate()
    qtbot.waitUntil(lambda: panel.token.text() != old, timeout=10_000)
    with (
        openai.OpenAI(base_url=url, api_key=old, max_retries=0) as stale,
        pytest.raises(openai.AuthenticationError),
    ):
        stale.models.list()

    # a new port while running: stopped, then started there
    old_port, port = port, free_port()
    assert page.apply("api.port", port)
    qtbot.waitUntil(lambda: f"127.0.0.1:{port}/v1" in panel.status.text(), timeout=60_000)
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", old_port)) != 0

    page.editors["api.enabled"].click()
    qtbot.waitUntil(lambda: "off" in panel.status.text(), timeout=60_000)
    assert not window.services.api_running
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0  # nothing listens any more
    saved = json.loads(window.services.paths.settings_file.read_text())["values"]
    assert saved.get("api.enabled", False) is False and saved["api.port"] == port


def test_a_machine_policy_can_turn_the_server_on(
    qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.ui.conftest import window_under_policy

    port = free_port()
    with window_under_policy(
        qtbot,
        tmp_path,
        monkeypatch,
        "Example Corp: the API is on for our tools",
        {"api.enabled": True, "api.port": port},
    ) as win:
        win.start()
        panel = win.settings_page.api_panel
        qtbot.waitUntil(lambda: f"127.0.0.1:{port}" in panel.status.text(), timeout=60_000)
        box = win.settings_page.editors["api.enabled"]
        assert box.isChecked() and not box.isEnabled()
        assert win.services.api_running
    assert not win.services.api_running  # closing the services stops it
