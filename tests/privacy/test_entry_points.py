"""Every Hearth process, the CLI, the app and each worker, turns the offline guard on first,
before it does any other work (the end-to-end test in test_no_egress.py proves what the guard
cannot see).

Each entry point runs in its own process under guard_driver.py, which notes in order what its
`main` does (install the guard, ask whether it is a worker, import a module, read stdin, touch
a socket), tries a real connection and a name lookup at the first piece of work, and stops the
process when it reaches the work named for it: before a window, a model or a request."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engine import network, workers

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("guard_driver.py")
PROBE_HOST, PROBE_PORT, PROBE_NAME = "192.0.2.1", 9, "guard-probe.invalid"  # as the driver
# Imported during an entry module's own import (before its main runs, so before the guard),
# any of these would be work done unguarded.
HEAVY = (
    "PySide6",
    "llama_cpp",
    "huggingface_hub",
    "chromadb",
    "torch",
    "sentence_transformers",
    "app.compose",
    "ui",
)


@dataclass(frozen=True)
class Entry:
    """An entry point, the arguments it runs with, where the driver stops it (`import:MODULE`
    or `stdin`), and what else it must have done, after the guard, by then."""

    module: str
    argv: list[str]
    stop: str
    reaches: list[str]


# The self-test's kernel check takes its work on the command line, not stdin, and is stopped
# where it loads llama.cpp.
KERNEL_CHECK = "engine.runtime.kernel_check"
ENTRY_POINTS = [
    Entry("app.cli", ["chats", "list"], "import:app.compose", ["run_if_worker"]),
    Entry("app.gui", [], "import:PySide6", ["run_if_worker"]),
    *[
        Entry(module, ["{tmp}"], "stdin", [])
        for module in workers.WORKERS.values()
        if module != KERNEL_CHECK
    ],
    Entry(KERNEL_CHECK, ["fast", "{tmp}/model.gguf"], "import:llama_cpp", []),
]


def run_driver(
    entry: Entry,
    tmp: Path,
    neuter_install: bool = False,
) -> tuple[dict[str, Any], list[network.Attempt]]:
    """Run `entry` under the driver; its report, and what the egress log holds from it."""
    report = tmp / f"{entry.module.replace(':', '-')}.json"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in network.OFFLINE_ENV and k != "HEARTH_SET_HF_OFFLINE"
    }
    # HEARTH_HOME is the test's own (conftest): the child writes its egress log there.
    env |= {"QT_QPA_PLATFORM": "offscreen", "HEARTH_STARTUP_PROBE": "1"}  # if Qt ever ran
    argv = [a.replace("{tmp}", str(tmp)) for a in entry.argv]
    result = subprocess.run(
        [
            sys.executable,
            str(DRIVER),
            str(report),
            entry.module,
            entry.stop,
            *(["--neuter-install"] if neuter_install else []),
            "--",
            *argv,
        ],
        cwd=ROOT,
        env=env,
        input="",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert report.exists(), f"the driver wrote no report:\n{result.stderr[-3000:]}"
    found = json.loads(report.read_text())
    return found, [a for a in network.read_log() if a.pid == found["pid"]]


def _said(event: dict[str, str]) -> str:
    return f"{event['kind']} {event['detail']}".rstrip()


def guard_problems(
    entry: Entry, report: dict[str, Any], attempts: list[network.Attempt]
) -> list[str]:
    """What is wrong with how this entry point guarded its process; [] when nothing."""
    problems = []
    loading = [e for e in report["events"] if e["phase"] == "import"]
    early = [
        _said(e)
        for e in loading
        if e["kind"] in ("socket", "stdin", "run_if_worker")
        or (e["kind"] == "import" and (e["detail"] in HEAVY or e["detail"].split(".")[0] in HEAVY))
    ]
    if early:
        problems.append(f"importing {entry.module} already did work: {early}")
    done = [e for e in report["events"] if e["phase"] == "main"]
    kinds = [e["kind"] for e in done]
    if "install" not in kinds:
        problems.append("main never called network.install")
        process = None
    else:
        first = kinds.index("install")
        process = done[first]["detail"]
        if first:
            problems.append(
                f"main did work before network.install: {[_said(e) for e in done[:first]]}"
            )
        later = {e["kind"] for e in done[first:]} | {
            f"{e['kind']}:{e['detail']}" for e in done[first:]
        }
        missing = [mark for mark in [*entry.reaches, entry.stop] if mark not in later]
        if missing:
            problems.append(f"main never reached {missing} after the guard")
    if report["stopped_at"] != entry.stop:
        problems.append(f"main ended before {entry.stop}: {report['ended']}")
    probe = report["probe"]
    if probe is None:
        problems.append("main did no work the driver could probe at")
        return problems
    where = f"at {_said(probe['at'])}"
    for kind in ("connect", "lookup"):
        if probe[kind] != "NetworkBlocked":
            problems.append(f"a {kind} {where} was not refused by the guard: {probe[kind]}")
    if probe["env"] != network.OFFLINE_ENV:
        problems.append(f"the offline variables were not set {where}: {probe['env']}")
    logged = {(a.kind, a.host, a.port, a.process) for a in attempts if not a.allowed}
    for want in (
        ("connect", PROBE_HOST, PROBE_PORT, process),
        ("lookup", PROBE_NAME, 443, process),
    ):
        if want not in logged:
            problems.append(
                f"the egress log has no refused {want[0]} to {want[1]} from "
                f"{process!r}: {sorted(logged, key=str)}"
            )
    return problems


@pytest.mark.slow
@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=lambda e: e.module)
def test_the_guard_is_on_before_the_entry_point_does_any_work(entry: Entry, tmp_path: Path) -> None:
    report, attempts = run_driver(entry, tmp_path)
    assert guard_problems(entry, report, attempts) == [], report["events"]


def test_every_installed_command_is_checked() -> None:
    """A new console script, or a new worker (ENTRY_POINTS reads WORKERS), cannot be missed."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    scripts = {**project.get("scripts", {}), **project.get("gui-scripts", {})}
    assert {target.split(":")[0] for target in scripts.values()} <= {e.module for e in ENTRY_POINTS}
    assert all(target.endswith(":main") for target in scripts.values())


@pytest.mark.slow
def test_the_check_fails_for_work_before_the_guard(tmp_path: Path) -> None:
    """The harness can fail: an entry point that asks whether it is a worker before it installs
    the guard is caught, by the order and by the probe made at that first work."""
    late = Entry("fake:late", [], "stdin", ["run_if_worker"])
    report, attempts = run_driver(late, tmp_path)
    problems = guard_problems(late, report, attempts)
    assert any(
        p.startswith("main did work before network.install: ['run_if_worker") for p in problems
    ), problems
    assert any(
        "connect at run_if_worker" in p and "ConnectionRefusedError" in p for p in problems
    ), problems
    assert attempts == []  # the driver's safety net, not the guard, refused it: nothing left


@pytest.mark.slow
def test_the_check_fails_when_install_does_nothing(tmp_path: Path) -> None:
    """The harness can fail: the CLI with `network.install` turned into a no-op is caught by
    the probe, although the call itself is still made first."""
    cli = ENTRY_POINTS[0]
    report, attempts = run_driver(cli, tmp_path, neuter_install=True)
    problems = guard_problems(cli, report, attempts)
    assert not any("before network.install" in p for p in problems), problems
    assert any("was not refused by the guard" in p for p in problems), problems
    assert any("the egress log has no refused connect" in p for p in problems), problems


@pytest.mark.slow
def test_the_check_fails_for_work_at_import_time(tmp_path: Path) -> None:
    """The harness can fail: an entry module that imports Qt at its top (before any main can
    install the guard) is caught, though its main installs the guard first."""
    qt = Entry("fake:qt-at-import", [], "stdin", [])
    report, attempts = run_driver(qt, tmp_path)
    problems = guard_problems(qt, report, attempts)
    assert len(problems) == 1, problems
    assert problems[0].startswith(
        "importing fake:qt-at-import already did work: ['import PySide6', "
    ), problems
