"""The app as launched: one instance per data folder, a stale lock taken over, and an event
loop that keeps answering while the engine works (a generous bound; bench/bench_gui.py
measures it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.app.test_cli_docs import make_docs
from tests.event_loop import GapRecorder
from ui.main_window import MainWindow

ROOT = Path(__file__).resolve().parents[2]


def launch(home: Path, probe: bool = False) -> subprocess.Popen[str]:
    env = dict(os.environ, HEARTH_HOME=str(home), QT_QPA_PLATFORM="offscreen")
    if probe:
        env["HEARTH_STARTUP_PROBE"] = "1"
    return subprocess.Popen(
        [sys.executable, "-m", "app"],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def wait_for_log(home: Path, text: str, timeout: float = 60) -> None:
    log = home / "logs" / "hearth.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never appeared in {log}")


def test_a_second_launch_raises_the_first_and_a_killed_ones_lock_is_taken_over(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    first = launch(home)
    try:
        wait_for_log(home, "model loaded")
        second = launch(home)
        _out, err = second.communicate(timeout=60)
        assert second.returncode == 0 and "already running" in err
        wait_for_log(home, "a second launch asked for the window", timeout=10)
        assert first.poll() is None  # the first one is still up
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # no chance to release the lock
        first.wait(10)
    assert (home / "data" / "hearth.lock").exists()
    third = launch(home, probe=True)
    out, err = third.communicate(timeout=60)
    assert third.returncode == 0, err
    assert out.startswith("interactive ")


def watch_event_loop(qtbot, until, timeout_ms: int) -> list[float]:
    """Gaps (ms) between ticks of a 10 ms timer while `until()` is false."""
    with GapRecorder() as recorder:
        qtbot.waitUntil(until, timeout=timeout_ms)
    return recorder.gaps


def test_the_event_loop_keeps_answering_while_generating_and_indexing(
    qtbot, window: MainWindow, tmp_path: Path
) -> None:
    window.services.chats.configure(
        window.chat.chat_id, sampling={"temperature": 0.8, "seed": 1, "max_tokens": 400}
    )
    window.chat.composer.setPlainText("Write a very long story about a dragon.")
    window.chat.send()
    generating = watch_event_loop(qtbot, lambda: not window.chat.busy(), 120_000)
    assert len(window.services.chats.messages(window.chat.chat_id)[-1].content) > 200

    docs = make_docs(tmp_path / "docs")
    for i in range(30):
        (docs / f"note-{i}.txt").write_text(f"Note {i}. " + "Lighthouses guide ships. " * 200)
    done: list[str] = []
    window.documents.indexed.connect(done.append)
    window.nav.setCurrentRow(2)
    window.documents.create_collection("notes", [str(docs)])
    indexing = watch_event_loop(qtbot, lambda: bool(done), 240_000)
    assert len(generating) > 20 and len(indexing) > 20
    # Generous: a shared 2-core machine can stall any process for a moment.
    assert max(generating) < 250, sorted(generating)[-5:]
    assert max(indexing) < 250, sorted(indexing)[-5:]
