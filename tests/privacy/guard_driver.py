"""Runs one Hearth entry point's `main` under instrumentation, for test_entry_points.py.

    python guard_driver.py REPORT ENTRY STOP [--neuter-install] -- ARGV...

ENTRY is a module whose `main` is an entry point, or one of the controls defined here (FAKES)
that do work before they install the guard. The driver notes, in order, everything `main` does
that counts as work: a call to `workers.run_if_worker`, the import of a module not yet loaded,
a read of stdin, a socket call. `network.install` is wrapped to note that it ran (and, with
--neuter-install, to do nothing: a control). At the first work after `main` starts, this
process tries a real connection to TEST-NET-1 (192.0.2.1, never routed) and a name lookup; the
guard, if it is on, refuses both and writes them to the egress log. When `main` reaches STOP
(`import:MODULE` or `stdin`), the driver writes REPORT (JSON) and exits at once: no window opens,
no model loads, no input is served.

Offline either way: while the real guard is off, the driver's own audit hook refuses every
socket call beyond loopback, so a control (or a regression) cannot reach the network.
"""

from __future__ import annotations

import importlib
import ipaddress
import json
import os
import socket
import sys
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine import network, workers  # what app.gui's main imports first, too

PROBE_HOST, PROBE_PORT = "192.0.2.1", 9  # TEST-NET-1 (RFC 5737): never routed
PROBE_NAME = "guard-probe.invalid"  # RFC 2606: never resolves
_NET_EVENTS = frozenset(
    {
        "socket.connect",
        "socket.sendto",
        "socket.sendmsg",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyname_ex",
        "socket.gethostbyaddr",
        "socket.getnameinfo",
    }
)

report_path = Path(sys.argv[1])
entry, stop = sys.argv[2], sys.argv[3]
neuter = "--neuter-install" in sys.argv[4 : sys.argv.index("--")]
argv = sys.argv[sys.argv.index("--") + 1 :]

events: list[dict[str, Any]] = []
state: dict[str, Any] = {"phase": "import", "probe": None, "stopped_at": None}
busy = threading.local()  # set while the driver itself works (probe, report)


def finish(ended: str | None = None) -> None:
    busy.on = True
    report = {
        "pid": os.getpid(),
        "entry": entry,
        "events": events,
        "probe": state["probe"],
        "stopped_at": state["stopped_at"],
        "ended": ended,
    }
    report_path.write_text(json.dumps(report, indent=1))
    os._exit(0)


def probe() -> dict[str, Any]:
    """Try to leave the machine, as any code in this process could."""
    found: dict[str, Any] = {
        "at": events[-1],
        "env": {k: os.environ.get(k) for k in network.OFFLINE_ENV},
    }
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect((PROBE_HOST, PROBE_PORT))
        found["connect"] = "connected"
    except OSError as exc:
        found["connect"] = type(exc).__name__
    finally:
        s.close()
    try:
        socket.getaddrinfo(PROBE_NAME, 443)
        found["lookup"] = "resolved"
    except OSError as exc:
        found["lookup"] = type(exc).__name__
    return found


def work(kind: str, detail: str) -> None:
    """Note one piece of work; probe at the first in `main`; stop at STOP."""
    if getattr(busy, "on", False):
        return
    busy.on = True
    try:
        events.append({"phase": state["phase"], "kind": kind, "detail": detail})
        if state["phase"] != "main":
            return
        if state["probe"] is None and kind != "socket":
            state["probe"] = probe()
        if stop in (kind, f"{kind}:{detail}"):
            state["stopped_at"] = stop
            finish()
    finally:
        busy.on = False


# -- instrumentation ----------------------------------------------------------------------


def _local(host: object) -> bool:
    name = (host.decode() if isinstance(host, bytes) else str(host or "")).strip("[]").lower()
    if name in ("", "localhost"):
        return True
    try:
        return ipaddress.ip_address(name.split("%")[0]).is_loopback
    except ValueError:
        return False


def audit(event: str, args: tuple[Any, ...]) -> None:
    if event not in _NET_EVENTS:
        return
    if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        if getattr(args[0], "family", None) == socket.AF_UNIX:
            return
        address = args[1] if len(args) > 1 else None
        host = address[0] if isinstance(address, tuple) else address
    else:
        host = args[0][0] if isinstance(args[0], tuple) else args[0]
    if not getattr(busy, "on", False):
        events.append({"phase": state["phase"], "kind": "socket", "detail": f"{event} {host!r}"})
    if not network._guard.installed and not _local(host):
        # The safety net, not the guard: no log line, and not NetworkBlocked.
        raise ConnectionRefusedError(f"guard_driver: {event} to {host!r} without the guard")


class ImportWatch:
    """A meta path finder that only notes each module loaded for the first time."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        work("import", fullname)


class Reads:
    """sys.stdin (and its .buffer) that notes the first read."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    @property
    def buffer(self) -> Reads:
        return Reads(self._raw.buffer)

    def read(self, *a: Any) -> Any:
        work("stdin", "read")
        return self._raw.read(*a)

    def readline(self, *a: Any) -> Any:
        work("stdin", "readline")
        return self._raw.readline(*a)

    def readlines(self, *a: Any) -> Any:
        work("stdin", "readlines")
        return self._raw.readlines(*a)

    def __iter__(self) -> Reads:
        return self

    def __next__(self) -> Any:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


real_install = network.install
real_run_if_worker = workers.run_if_worker


def install(process: str) -> None:
    if not getattr(busy, "on", False):
        events.append({"phase": state["phase"], "kind": "install", "detail": process})
    if not neuter:
        real_install(process)


def run_if_worker(argv: list[str]) -> bool:
    work("run_if_worker", " ".join(argv))
    return real_run_if_worker(argv)


def fake_late_main() -> None:
    """A control: an entry point that asks whether it is a worker before it installs the
    guard, then reads its input."""
    workers.run_if_worker([])
    network.install("late")
    sys.stdin.readline()


def fake_qt_at_import() -> Any:
    """A control: an entry module that imports Qt at its top, then installs the guard first
    thing in its main."""
    importlib.import_module("PySide6.QtCore")

    def main() -> None:
        network.install("qt at import")
        sys.stdin.readline()

    return main


FAKES = {"fake:late": lambda: fake_late_main, "fake:qt-at-import": fake_qt_at_import}


sys.addaudithook(audit)  # first hook: it runs before the guard's, so it sees every call
network.install = install
workers.run_if_worker = run_if_worker
sys.stdin = Reads(sys.stdin)
sys.argv = [entry, *argv]
sys.meta_path.insert(0, ImportWatch())

try:
    # The entry module's own top-level code runs in phase "import", before main.
    main = FAKES[entry]() if entry in FAKES else importlib.import_module(entry).main
    state["phase"] = "main"
    main()
    finish("main returned")
except BaseException as exc:  # whatever ended main goes into the report
    finish(f"{type(exc).__name__}: {exc}")
