"""The checks every UI test ends with can fail (conftest.py's `nothing_left_running`)."""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication, QWidget

from tests.ui.conftest import running_timers


def test_a_timer_left_running_on_a_closed_window_is_found(qtbot) -> None:
    window = QWidget()
    qtbot.addWidget(window)
    timer = QTimer(window)
    timer.start(60_000)
    window.show()
    window.close()  # as the window fixture does before the check runs
    assert not window.isVisible()
    assert timer in running_timers()
    timer.stop()
    assert timer not in running_timers()


def test_timers_outside_any_window_are_found(qtbot) -> None:
    holder = QObject(QApplication.instance())  # a non-widget owner, as a service might be
    under_app = QTimer(holder)
    loose = QTimer()  # no parent: only Python holds it
    for timer in (under_app, loose):
        timer.start(60_000)
    try:
        assert under_app in running_timers() and loose in running_timers()
    finally:
        under_app.stop()
        loose.stop()
        holder.deleteLater()
    assert under_app not in running_timers() and loose not in running_timers()
