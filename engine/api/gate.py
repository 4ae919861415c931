"""First come, first served access to the one model for API requests, with a bounded queue.

The runtime's own lock serialises answers but promises no order; the gate gives API requests
theirs, refuses more than `max_waiting` waiting ones (503), and lets a request whose client has
gone leave the queue instead of holding a place.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

from engine.api.protocol import ApiError
from engine.errors import Cancelled


class Gate:
    """First come, first served access to the model for API requests, with a bounded queue."""

    def __init__(self, max_waiting: int) -> None:
        self.max_waiting = max_waiting
        self._cond = threading.Condition()
        self._next_ticket = 0
        self._serving = 0
        self._abandoned: set[int] = set()  # tickets whose holders left before their turn

    @property
    def waiting(self) -> int:
        """Requests holding or waiting for a turn."""
        with self._cond:
            return self._waiting()

    def _waiting(self) -> int:
        return self._next_ticket - self._serving - len(self._abandoned)

    @contextlib.contextmanager
    def turn(self, gone: Callable[[], bool]) -> Iterator[None]:
        """Wait for this request's turn. Raises ApiError(503) when the queue is full and
        Cancelled when `gone()` turns true while waiting (client left, server stopping)."""
        with self._cond:
            if self._waiting() > self.max_waiting:
                raise ApiError(
                    503,
                    "The server is busy: too many requests are waiting for "
                    "the model. Try again shortly.",
                    type="server_error",
                    code="queue_full",
                )
            ticket = self._next_ticket
            self._next_ticket += 1
        try:
            with self._cond:
                while ticket != self._serving:
                    self._cond.wait(0.1)
                    if ticket != self._serving and gone():
                        raise Cancelled()
            yield
        finally:
            with self._cond:
                if ticket == self._serving:
                    self._serving += 1
                else:  # left the queue before its turn: its ticket is skipped when reached
                    self._abandoned.add(ticket)
                while self._serving in self._abandoned:
                    self._abandoned.discard(self._serving)
                    self._serving += 1
                self._cond.notify_all()
