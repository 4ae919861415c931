"""How late the Qt event loop runs: a 10 ms timer and the gaps between its ticks. A gap of
10 ms means no delay. Shared by tests/ui and bench/bench_gui.py."""

from __future__ import annotations

from PySide6.QtCore import QElapsedTimer, QTimer


class GapRecorder:
    """Use on the GUI thread: `with GapRecorder() as rec: ...` then `rec.gaps` (ms)."""

    def __init__(self, interval_ms: int = 10) -> None:
        self.gaps: list[float] = []
        self._clock = QElapsedTimer()
        self._timer = QTimer()
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)
        self._last = 0

    def __enter__(self) -> GapRecorder:
        self._clock.start()
        self._last = self._clock.nsecsElapsed()
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.stop()

    def _tick(self) -> None:
        now = self._clock.nsecsElapsed()
        self.gaps.append((now - self._last) / 1e6)
        self._last = now
