"""Logs hold no prompts, answers or document text unless the user turns on debug logging."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from engine.settings import Settings
from tests.doc_files import make_pdf

ROOT = Path(__file__).resolve().parents[2]
SECRETS = ("QUOKKA", "ZEBRA-7731")


def hearth(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HEARTH_HOME=str(home))
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def logged(home: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in (home / "logs").rglob("*") if p.is_file())


def test_logs_hold_no_content_unless_debug_logging_is_on(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    make_pdf(docs / "vault.pdf", ["The vault code of the QUOKKA project is ZEBRA-7731."])
    home = tmp_path / "home"
    hearth(home, "docs", "add", "vault", str(docs))
    hearth(
        home,
        "ask",
        "--docs",
        "vault",
        "--max-tokens",
        "16",
        "What is the vault code of the QUOKKA project?",
    )
    hearth(home, "ask", "--max-tokens", "8", "Say hello to QUOKKA.")
    text = logged(home)
    assert "model loaded" in text and "embedder loaded" in text  # the log is really written
    assert not any(secret in text for secret in SECRETS)

    settings = Settings.load(home / "config" / "settings.json")
    settings.set("privacy.debug_logging", True)
    settings.save()
    hearth(
        home,
        "ask",
        "--docs",
        "vault",
        "--max-tokens",
        "16",
        "What is the vault code of the QUOKKA project?",
    )
    text = logged(home)
    assert all(secret in text for secret in SECRETS)  # the check above could have failed
