"""The real main window over real services, and the checks every UI test ends with."""

from __future__ import annotations

import contextlib
import gc
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import shiboken6
from PySide6.QtCore import QObject, QThreadPool, QTimer
from PySide6.QtWidgets import QApplication

from app import compose
from ui.main_window import MainWindow


def running_timers() -> list[QTimer]:
    """Every active QTimer still reachable: under any top-level widget, shown or closed (a
    test's window is closed before its teardown checks), under the application object, or held
    from Python with no parent at all."""
    app = QApplication.instance()
    owners: list[QObject] = [w for w in QApplication.topLevelWidgets() if shiboken6.isValid(w)]
    if app is not None:
        owners.append(app)
    found = [t for owner in owners for t in owner.findChildren(QTimer)]
    found += [o for o in gc.get_objects() if isinstance(o, QTimer)]
    running: dict[int, QTimer] = {}
    for timer in found:
        if shiboken6.isValid(timer) and timer.isActive():  # skip C++ objects already deleted
            running[id(timer)] = timer
    return list(running.values())


def describe(timer: QTimer) -> str:
    owner = timer.parent()
    chain = []
    while owner is not None:
        chain.append(owner.objectName() or type(owner).__name__)
        owner = owner.parent()
    name = timer.objectName() or f"{timer.interval()} ms timer"
    return f"{name} on {' < '.join(chain) or 'no parent'}"


@pytest.fixture(autouse=True)
def nothing_left_running(qtbot) -> Iterator[None]:
    """A UI test that leaves a pool thread or an active timer behind fails."""
    yield
    pool = QThreadPool.globalInstance()
    qtbot.waitUntil(lambda: pool.activeThreadCount() == 0, timeout=15_000)
    timers = running_timers()
    assert not timers, f"timers still running: {[describe(t) for t in timers]}"


def ready(window: MainWindow) -> bool:
    return window.chat.model_state.endswith("ready") and not window.chat.busy()


@pytest.fixture
def services() -> Iterator[compose.Services]:
    s = compose.build(isolate_documents=True)  # as the app builds them
    yield s
    s.close()


@pytest.fixture
def window(qtbot, services) -> Iterator[MainWindow]:
    """The window as `python -m app` builds it, after the bundled model has loaded."""
    win = MainWindow(services)
    qtbot.addWidget(win)
    win.show()
    win.start()
    qtbot.waitUntil(lambda: ready(win), timeout=60_000)
    yield win
    close(qtbot, win)


def close(qtbot, win: MainWindow) -> None:
    win.close()  # saves the window state and stops background work
    qtbot.waitUntil(lambda: QThreadPool.globalInstance().activeThreadCount() == 0, timeout=15_000)


@contextlib.contextmanager
def window_under_policy(
    qtbot, folder: Path, monkeypatch: pytest.MonkeyPatch, reason: str, settings: dict[str, Any]
) -> Iterator[MainWindow]:
    """A shown window (not started) over services built under a machine policy file."""
    policy = folder / "policy.json"
    policy.write_text(json.dumps({"reason": reason, "settings": settings}))
    monkeypatch.setenv("HEARTH_POLICY", str(policy))
    services = compose.build(isolate_documents=True)
    win = MainWindow(services)
    qtbot.addWidget(win)
    try:
        win.show()
        yield win
    finally:
        close(qtbot, win)
        services.close()
