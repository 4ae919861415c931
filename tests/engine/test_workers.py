"""Each worker starts as `python -m module` from source and by its flag in a frozen build."""

from __future__ import annotations

import importlib
import sys

import pytest

from engine import workers


def test_worker_commands_from_source_and_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    module = "engine.documents.service_worker"
    assert workers.command(module, "/data") == [sys.executable, "-m", module, "/data"]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert workers.command(module, "/data") == [
        sys.executable,
        "--hearth-documents-worker",
        "/data",
    ]
    for name in workers.WORKERS.values():  # every flag leads to a real entry point
        assert callable(importlib.import_module(name).main)
    assert workers.run_if_worker(["chat"]) is False and workers.run_if_worker([]) is False
