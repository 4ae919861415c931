"""Shared fixtures. Every test gets its own HEARTH_HOME; nothing touches the real home."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from engine import network

# The suite runs under the same guard as the app: a test (or a library under test) that tries
# to reach past loopback fails with NetworkBlocked instead of quietly going online.
network.install("tests")


@pytest.fixture(autouse=True)
def hearth_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "hearth-home"
    monkeypatch.setenv("HEARTH_HOME", str(home))
    return home


def _reads_a_live_worker(thread: threading.Thread) -> bool:
    """The reader of a model worker that is still running: a runtime shared by a module's
    tests replaces a worker it had to kill (a stop that took too long on a loaded machine),
    and the new worker's reader rightly outlives the test that started it."""
    import psutil

    prefix = "hearth-worker-events-"
    if not thread.name.startswith(prefix):
        return False
    try:
        worker = psutil.Process(int(thread.name.removeprefix(prefix)))
        return worker.status() != psutil.STATUS_ZOMBIE
    except (ValueError, psutil.Error):
        return False


@pytest.fixture(autouse=True)
def no_leftover_threads() -> Iterator[None]:
    """A test that leaves one of our threads running fails (daemon reader threads of a
    worker that is being reaped get up to 10 s to end: a loaded machine is slow to reap)."""
    before = set(threading.enumerate())
    yield
    deadline = threading.Event()
    for _ in range(200):
        extra = [
            t
            for t in threading.enumerate()
            if t not in before
            and t.is_alive()
            and t.name.startswith(("hearth-", "hf-loopback"))
            and not _reads_a_live_worker(t)
        ]
        if not extra:
            return
        deadline.wait(0.05)
    pytest.fail(f"threads left running after the test: {[t.name for t in extra]}")


@pytest.fixture(scope="session")
def bundled_gguf() -> Path:
    from engine.models import bundled

    return bundled.CHAT.path()


@pytest.fixture
def keyring_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """keyrings.alt's file keyring, chosen through PYTHON_KEYRING_BACKEND as a user would (this
    machine has no desktop keyring service), in the test's own folder."""
    import keyring.core

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    keyring.core.init_backend()
    yield
    monkeypatch.undo()
    keyring.core.init_backend()
