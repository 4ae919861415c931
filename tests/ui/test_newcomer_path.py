"""A newcomer's path through the real window on a real X server (Xvfb, the xcb platform
plugin, not offscreen): tests/ui/newcomer_path.py walks it in its own process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.app.test_cli_docs import make_docs

DRIVER = Path(__file__).with_name("newcomer_path.py")


@pytest.fixture
def display(tmp_path: Path):
    """A private X server; its display number from -displayfd."""
    if not shutil.which("Xvfb"):
        pytest.fail("this test needs Xvfb (scripts/test installs it)")
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as fh:
        number = fh.readline().strip()
    try:
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(10)


def test_a_newcomers_first_minutes_in_the_real_window(tmp_path: Path, display: str) -> None:
    docs = make_docs(tmp_path / "Office files")
    shots = tmp_path / "shots"  # kept when the test fails, to look at
    shots.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    env.update(DISPLAY=display, QT_QPA_PLATFORM="xcb", HEARTH_HOME=str(tmp_path / "home"))
    result = subprocess.run(
        [sys.executable, str(DRIVER), str(docs), str(shots)],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    steps = json.loads(result.stdout.strip().splitlines()[-1])
    assert steps["platform"] == "xcb"  # a real X server, not offscreen
    assert steps["active"] and steps["welcome shown"] and steps["ready"]
    assert "Paris" in steps["first answer"]
    assert steps["answer shown at most once while streaming"]
    assert steps["stopped"][0] == "stopped" and steps["stopped"][1] > 0
    assert steps["old answer gone while regenerating"]
    assert steps["edited"] == "What is the capital of Italy?"
    assert steps["new chat empty"]
    assert steps["indexed"] and steps["chip"] == "Documents: Office files"
    assert steps["sources"] and steps["sources"][0] == ["report.pdf", 3]
    opened = steps["open source"]
    # Opened inside Hearth at page 3 with the quote boxed, and no error.
    assert (opened["page"], opened["error"]) == (3, ""), opened
    assert opened["boxes"] >= 1 and "the quoted passage is highlighted" in opened["title"]
