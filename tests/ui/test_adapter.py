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
