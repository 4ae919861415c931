"""The window streams a real answer from the bundled model and stops on request, without
the GUI thread waiting on the engine."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QThreadPool

from engine.runtime import LoadParams, ModelRuntime, SamplingParams
from ui.adapter import StreamTask
from ui.chat_window import ChatWindow


@pytest.fixture
def window(qtbot, bundled_gguf: Path) -> Iterator[ChatWindow]:
    runtime = ModelRuntime()
    win = ChatWindow(runtime, LoadParams(str(bundled_gguf)),
                     SamplingParams(temperature=0, max_tokens=2000), "You are a helpful assistant.")
    qtbot.addWidget(win)
    win.show()
    # "ready" is shown by the load task's last item; the task is still running for a moment
    # after it, and send() ignores input while a task runs. Wait for both.
    qtbot.waitUntil(lambda: "ready" in win.status.text() and win.task is not None
                    and not win.task.running, timeout=60_000)
    yield win
    win.stop()
    QThreadPool.globalInstance().waitForDone(10_000)
    runtime.close()


def test_send_streams_an_answer_with_stats(qtbot, window: ChatWindow) -> None:
    window.composer.setPlainText("What is the capital of France?")
    window.send()
    assert window.task is not None
    with qtbot.waitSignal(window.task.finished, timeout=60_000):
        pass
    assert "Paris" in window.transcript.toPlainText()
    assert "tokens/s" in window.status.text()
    assert window.send_button.isEnabled() and not window.stop_button.isEnabled()


def test_stop_ends_a_long_answer(qtbot, window: ChatWindow) -> None:
    window.sampling = SamplingParams(temperature=0.8, seed=3, max_tokens=3000)
    window.composer.setPlainText("Write a very long story about a lighthouse keeper.")
    window.send()
    task = window.task
    assert task is not None
    start = len(window.transcript.toPlainText())
    qtbot.waitUntil(lambda: len(window.transcript.toPlainText()) > start + 100, timeout=60_000)
    assert task.running
    with qtbot.waitSignal(task.finished, timeout=5_000):
        window.stop_button.click()
    assert "(stopped)" in window.status.text()


def test_adapter_reports_errors_and_always_finishes(qtbot) -> None:
    from engine.errors import HearthError

    def boom() -> Iterator[int]:
        yield 1
        raise HearthError("The disk is full.")

    task = StreamTask(boom)
    items: list[int] = []
    errors: list[str] = []
    task.item.connect(items.append)
    task.failed.connect(errors.append)
    with qtbot.waitSignal(task.finished, timeout=5_000):
        task.start()
    assert items == [1] and errors == ["The disk is full."]


def test_adapter_stop_without_on_stop_closes_the_generator(qtbot) -> None:
    closed: list[bool] = []

    def endless() -> Iterator[int]:
        try:
            n = 0
            while True:
                n += 1
                time.sleep(0.005)  # a real generator does work between items
                yield n
        finally:
            closed.append(True)

    task = StreamTask(endless)
    task.item.connect(lambda n: task.stop() if n == 3 else None)
    seen: list[int] = []
    task.item.connect(seen.append)
    with qtbot.waitSignal(task.finished, timeout=5_000):
        task.start()
    assert closed == [True]
    assert 3 <= len(seen) < 50  # it stopped soon after being asked
