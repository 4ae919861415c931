"""The one adapter from engine generators to Qt signals: items, errors, stop, always finished."""

from __future__ import annotations

import time
from collections.abc import Iterator

from ui.adapter import StreamTask


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


def test_start_task_wires_the_slots_and_releases_the_task_once_finished(qtbot) -> None:
    """Each page starts its work through start_task: the slots run in order on the GUI
    thread, and the task deletes itself after `finished`, so no QObject is left per turn."""
    import shiboken6
    from PySide6.QtCore import QObject

    from ui.adapter import start_task

    owner = QObject()
    calls: list[str] = []
    task = start_task(
        owner,
        lambda: iter([1, 2]),
        on_item=lambda n: calls.append(f"item {n}"),
        on_failed=calls.append,
        on_finished=lambda: calls.append("finished"),
    )
    assert task.parent() is owner
    qtbot.waitUntil(lambda: not shiboken6.isValid(task), timeout=5_000)
    assert calls == ["item 1", "item 2", "finished"]
    assert owner.findChildren(StreamTask) == []


def test_qt_calls_keep_none_alive() -> None:
    """PySide6 6.12.0 drops a reference to None on every Qt call that returns nothing; on
    Python 3.11, where None is not immortal, the process aborts after a few thousand calls
    (a chat list refilled eight times did it). pyproject.toml excludes that release."""
    import sys

    from PySide6.QtWidgets import QLabel

    label = QLabel()
    before = sys.getrefcount(None)
    for _ in range(200):
        label.setText("x")
    assert sys.getrefcount(None) - before > -100  # immortal (3.12+) or balanced
