"""The one adapter from engine generators to Qt signals.

`StreamTask` runs a generator on a pool thread and re-emits each item as a signal, which Qt
delivers on the GUI thread. The GUI thread never waits on the engine. Whatever happens,
`finished` is emitted exactly once, after `failed` if the generator raised.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from engine.errors import Cancelled, HearthError

log = logging.getLogger(__name__)


class StreamTask(QObject):
    """Runs `factory()` (a generator) off the GUI thread.

    Signals (delivered on the thread that owns this object, normally the GUI thread):
      item(object)   each value the generator yields
      failed(str)    a user-facing message if it raised (not emitted for Cancelled)
      finished()     always, last
    """

    item = Signal(object)
    failed = Signal(str)
    finished = Signal()

    def __init__(
        self,
        factory: Callable[[], Iterator[Any]],
        on_stop: Callable[[], None] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._factory = factory
        self._on_stop = on_stop
        self._stop = threading.Event()
        self._done = threading.Event()

    @property
    def running(self) -> bool:
        return not self._done.is_set()

    def start(self, pool: QThreadPool | None = None) -> None:
        (pool or QThreadPool.globalInstance()).start(_Runner(self))

    def stop(self) -> None:
        """Ask the generator to stop: through `on_stop` if given (the generator then ends by
        itself, final item included), else by closing it at its next item."""
        self._stop.set()
        if self._on_stop is not None:
            threading.Thread(target=self._on_stop, daemon=True).start()

    def wait(self, timeout: float | None = None) -> bool:
        """For tests and shutdown only: block until the task has finished."""
        return self._done.wait(timeout)

    @staticmethod
    def _emit(signal: Any, *args: Any) -> bool:
        """Emit, unless the window that owned this task has been deleted meanwhile."""
        try:
            signal.emit(*args)
        except RuntimeError:  # "Signal source has been deleted"
            return False
        return True

    def _run(self) -> None:
        gen: Iterator[Any] | None = None
        try:
            gen = self._factory()
            for value in gen:
                if not self._emit(self.item, value):
                    break  # nobody is left to receive it
                # A generator with its own stop (on_stop) ends by itself and still delivers
                # its final item (e.g. Done with stats); others are cut off here.
                if self._stop.is_set() and self._on_stop is None:
                    break
        except Cancelled:
            pass
        except HearthError as exc:
            self._emit(self.failed, exc.user_message)
        except Exception as exc:  # a bug: show it rather than leave the UI spinning
            log.exception("background task failed")
            self._emit(self.failed, f"Unexpected error: {type(exc).__name__}: {exc}")
        finally:
            close = getattr(gen, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    log.exception("closing a background generator failed")
            self._done.set()
            self._emit(self.finished)


class _Runner(QRunnable):
    def __init__(self, task: StreamTask) -> None:
        super().__init__()
        self._task = task

    def run(self) -> None:
        self._task._run()


def start_task(
    parent: QObject,
    factory: Callable[[], Iterator[Any]],
    *,
    on_item: Callable[[Any], None] | None = None,
    on_failed: Callable[[str], None] | None = None,
    on_finished: Callable[[], None] | None = None,
    on_stop: Callable[[], None] | None = None,
) -> StreamTask:
    """Run `factory()` off the GUI thread with its signals wired to the given slots (called
    on the GUI thread), and start it. The task deletes itself once `finished` has been
    delivered: keep the returned task only until then (to stop it), not after."""
    task = StreamTask(factory, on_stop=on_stop, parent=parent)
    if on_item is not None:
        task.item.connect(on_item)
    if on_failed is not None:
        task.failed.connect(on_failed)
    if on_finished is not None:
        task.finished.connect(on_finished)
    task.finished.connect(task.deleteLater)  # after the slots above: connections run in order
    task.start()
    return task


def run_call(
    parent: QObject,
    call: Callable[[], Any],
    on_result: Callable[[Any], None],
    on_error: Callable[[str], None],
) -> StreamTask:
    """Run one blocking engine call off the GUI thread; its result arrives on `on_result`."""

    def once() -> Iterator[Any]:
        yield call()

    return start_task(parent, once, on_item=on_result, on_failed=on_error)
