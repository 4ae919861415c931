"""Every Hearth process, the app, the CLI and each worker, installs the offline guard in its
entry point (the end-to-end test in test_no_egress.py proves what the guard cannot see)."""

from __future__ import annotations

import importlib
import inspect

from engine import workers


def test_every_hearth_process_installs_the_guard_first() -> None:
    modules = ["app.cli", "app.gui", *workers.WORKERS.values()]
    for name in modules:
        body = inspect.getsource(importlib.import_module(name).main)
        assert "network.install(" in body, f"{name}.main does not install the offline guard"
