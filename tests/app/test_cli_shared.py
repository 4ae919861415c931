"""`hearth docs publish` and `hearth docs attach` as real subprocesses, between two data folders
(two "laptops"), against a real `chroma run` on 127.0.0.1."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from engine import paths
from engine.settings import Settings
from tests.app.test_cli_docs import make_docs, run
from tests.chroma_server import ChromaProcess


def configure(home: Path, monkeypatch: pytest.MonkeyPatch, servers: list[str]) -> None:
    monkeypatch.setenv("HEARTH_HOME", str(home))
    settings = Settings.load(paths.resolve().ensure().settings_file)
    settings.set("remote.chroma_servers", servers)
    settings.save()


def test_publish_on_one_laptop_attach_and_search_on_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ChromaProcess(tmp_path / "chroma") as server:
        configure(tmp_path / "laptop-a", monkeypatch, [server.url])
        docs = make_docs(tmp_path / "docs")
        assert run("docs", "add", "work", str(docs), "--json").returncode == 0
        out = run("docs", "publish", "work", "--server", server.url, "--as", "team-work", "--json")
        assert out.returncode == 0, out.stderr
        published = json.loads(out.stdout)
        assert published["remote_name"] == "team-work" and published["passages"] > 0

        configure(tmp_path / "laptop-b", monkeypatch, [])
        refused = run("docs", "attach", server.url, "team-work")
        assert refused.returncode == 1
        assert "not one of the configured servers" in refused.stderr

        configure(tmp_path / "laptop-b", monkeypatch, [server.url])
        out = run("docs", "attach", server.url, "team-work", "--as", "shared", "--json")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["counts"]["chunks"] == published["passages"]
        listed = json.loads(run("docs", "list", "--json").stdout)
        assert listed[0]["name"] == "shared"
        assert listed[0]["shared"] == f"{server.url} team-work"
        found = run("docs", "search", "shared", "what is the vault code word", "--json")
        assert found.returncode == 0, found.stderr
        top = json.loads(found.stdout)["hits"][0]
        assert "PELICAN" in top["text"] and top["path"].endswith("report.pdf")
        assert top["page"] == 3
        assert os.environ["HEARTH_HOME"] == str(tmp_path / "laptop-b")
