"""`hearth remote` and `hearth ask --model remote:…` end to end, as a team member would: add the
GPU box's server with its token, see its models, ask it; and as IT would: a machine policy that
turns servers off is obeyed and named. The server is llama-cpp-python's own, on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.model_servers import LlamaServer

HEARTH = [sys.executable, "-m", "app.cli"]
TOKEN = "team-secret-2"


@pytest.fixture(scope="module")
def llama(bundled_gguf: Path) -> Iterator[LlamaServer]:
    with LlamaServer(bundled_gguf, api_key=TOKEN) as server:
        yield server


def hearth(
    home: Path, *args: str, stdin: str = "", policy: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        HEARTH_HOME=str(home),
        HEARTH_POLICY=str(policy or home / "no-policy.json"),
        PYTHON_KEYRING_BACKEND="keyrings.alt.file.PlaintextKeyring",
        XDG_DATA_HOME=str(home / "xdg"),
    )
    return subprocess.run(
        [*HEARTH, *args], input=stdin, capture_output=True, text=True, timeout=300, env=env
    )


def test_add_a_server_with_its_token_then_ask_its_model(llama: LlamaServer, tmp_path: Path) -> None:
    home = tmp_path / "laptop"
    added = hearth(home, "remote", "add", llama.url, "--token-stdin", stdin=TOKEN + "\n")
    assert added.returncode == 0, added.stderr
    model = f"remote:127.0.0.1:{llama.port}/smollm2"
    assert model in added.stdout
    assert TOKEN not in (home / "config" / "settings.json").read_text()

    listed = json.loads(hearth(home, "remote", "list", "--json").stdout)
    assert listed[0]["url"] == llama.url and listed[0]["problem"] is None

    asked = hearth(home, "ask", "--model", model, "--json", "--max-tokens", "16", "Say hello.")
    assert asked.returncode == 0, asked.stderr
    result = json.loads(asked.stdout)
    assert result["answer"].strip() and result["stats"]["generated_tokens"] > 0

    keyring_dir = home / "xdg"  # the file keyring the test chose; nothing else may hold it
    files = [p for p in home.rglob("*") if p.is_file() and keyring_dir not in p.parents]
    assert any(p.name == "hearth.log" for p in files)
    assert not [p for p in files if TOKEN.encode() in p.read_bytes()]

    forgot = hearth(home, "remote", "token", llama.url, stdin="")
    assert forgot.returncode == 0
    refused = hearth(home, "ask", "--model", model, "Say hello.")
    assert refused.returncode == 1 and "refused Hearth's token (HTTP 401)" in refused.stderr


def test_a_policy_that_turns_servers_off_is_obeyed_and_named(
    llama: LlamaServer, tmp_path: Path
) -> None:
    home = tmp_path / "managed"
    policy = tmp_path / "policy.json"
    reason = "Set by Example Corp IT (ticket 77)"
    policy.write_text(json.dumps({"reason": reason, "settings": {"remote.allowed": False}}))
    added = hearth(home, "remote", "add", llama.url, policy=policy)
    assert added.returncode == 1 and reason in added.stderr

    policy.write_text(
        json.dumps({"reason": reason, "settings": {"remote.servers": ["https://gpu.corp:8080/v1"]}})
    )
    added = hearth(home, "remote", "add", llama.url, policy=policy)
    assert added.returncode == 1 and reason in added.stderr
    asked = hearth(
        home, "ask", "--model", f"remote:127.0.0.1:{llama.port}/smollm2", "Hi", policy=policy
    )
    assert asked.returncode == 1 and "not one of the configured model servers" in asked.stderr


def test_a_chroma_server_is_added_with_its_token_for_docs_attach(tmp_path: Path) -> None:
    home = tmp_path / "laptop"
    url = "https://chroma.example.org:8000"
    added = hearth(home, "remote", "add", "--chroma", url, "--token-stdin", stdin="ro-token\n")
    assert added.returncode == 0, added.stderr
    assert f"hearth docs attach {url}" in added.stdout  # no request was made: nothing to ask
    values = json.loads((home / "config" / "settings.json").read_text())["values"]
    assert values["remote.chroma_servers"] == [url] and "remote.servers" not in values
    assert "ro-token" not in (home / "config" / "settings.json").read_text()
    removed = hearth(home, "remote", "remove", "--chroma", url)
    assert removed.returncode == 0, removed.stderr
    values = json.loads((home / "config" / "settings.json").read_text())["values"]
    assert values.get("remote.chroma_servers", []) == []  # back to the default
