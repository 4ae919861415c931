"""The child processes Hearth starts, and how each is started: `python -m module` from a
source install, or the frozen executable re-run with a flag (a PyInstaller build has no -m;
app/cli.py and app/gui.py hand the flag to `run_if_worker`)."""

from __future__ import annotations

import importlib
import os
import shlex
import sys

# A command put before every worker's argv, for tests and the release's proof on other CPUs:
# HEARTH_WORKER_PREFIX="qemu-x86_64 -cpu Nehalem" runs the workers (llama.cpp among them) on
# an emulated older CPU. QEMU's user mode runs only the process it starts, not its children,
# so the prefix has to be added where each worker is started. Unset, it changes nothing.
PREFIX_ENV = "HEARTH_WORKER_PREFIX"

WORKERS = {
    "--hearth-model-worker": "engine.runtime.worker",  # owns llama.cpp
    "--hearth-parse-worker": "engine.documents.parse_worker",  # reads untrusted files
    "--hearth-documents-worker": "engine.documents.service_worker",  # the GUI's index/search
    "--hearth-view-worker": "engine.documents.source_view",  # draws a source for the viewer
    "--hearth-kernel-check": "engine.runtime.kernel_check",  # llama.cpp's kernels, scored
}


def command(module: str, *args: str) -> list[str]:
    """The argv that starts the worker `module` with `args`."""
    prefix = shlex.split(os.environ.get(PREFIX_ENV, ""))
    if getattr(sys, "frozen", False):
        flag = next(f for f, m in WORKERS.items() if m == module)
        return [*prefix, sys.executable, flag, *args]
    return [*prefix, sys.executable, "-m", module, *args]


def run_if_worker(argv: list[str]) -> bool:
    """If argv[0] is a worker flag, run that worker to its end and return True."""
    module = WORKERS.get(argv[0]) if argv else None
    if module is None:
        return False
    importlib.import_module(module).main()
    return True
