"""The offline guard and the egress log.

Hearth uses the network only for a download the user started. Three layers make that true:

1. `install()` sets the Hugging Face and chromadb offline and telemetry variables before any of
   those libraries is imported, so they never try on their own.
2. It adds a Python audit hook that sees every socket connect, send and name lookup in the
   process. Loopback and local (Unix) sockets pass. Anything else passes only inside `allow()`,
   which a download opens around its own requests in its own thread, or inside
   `allow_hosts()`, which a remote model server or Chroma server the user configured opens
   around each request: that thread may then look up and reach those hosts and no other.
   Everything else is refused with `NetworkBlocked` (an OSError, so libraries treat it as "no
   network") before a packet leaves.
3. Every non-loopback attempt, allowed or refused, is appended to the egress log
   (`logs/egress.jsonl`), shared by the app and its worker processes, which the UI shows.

The hook sees Python code only; native code (llama.cpp, chromadb's Rust core) is checked by the
end-to-end test that runs the whole flow under strace in a network namespace (tests/privacy).

An audit hook is process-wide and cannot be removed, so this module keeps process-wide state on
purpose: one guard per process, installed by each entry point and each worker's main.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from engine.errors import NetworkBlocked

LOG_NAME = "egress.jsonl"

# Forced, not defaulted: Hearth has no switch that turns telemetry on.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",  # huggingface_hub, transformers, sentence-transformers: cache only
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",  # never send a token the user did not give Hearth
    "HF_HUB_DISABLE_UPDATE_CHECK": "1",
    "DISABLE_TELEMETRY": "1",
    "ANONYMIZED_TELEMETRY": "False",  # chromadb
    "DO_NOT_TRACK": "1",  # the cross-tool convention
}
# Set by install() when it, not the user, turned HF offline mode on; a user's own
# HF_HUB_OFFLINE=1 still forbids downloads (downloads.py checks `user_forced_offline`).
_OURS_ENV = "HEARTH_SET_HF_OFFLINE"
_LIBRARIES = ("huggingface_hub", "transformers", "sentence_transformers", "chromadb")

_SOCKET_EVENTS = frozenset(
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
_NET_MODULES = (
    "socket",
    "ssl",
    "http.",
    "urllib",
    "httpx",
    "httpcore",
    "h11",
    "anyio",
    "asyncio",
    "requests",
    "selectors",
    "huggingface_hub.utils._http",
    "engine.network",
)


@dataclass(frozen=True)
class Attempt:
    """One outbound attempt: a connect, a datagram or a name lookup."""

    time: float
    process: str
    pid: int
    kind: str  # "connect", "send" or "lookup"
    host: str
    port: int | None
    allowed: bool
    purpose: str  # what the user started, or who tried when refused


class _Guard:
    def __init__(self) -> None:
        self.installed = False
        self.process = "hearth"
        self.local = threading.local()
        self.lock = threading.Lock()
        self.hub_users = 0  # threads inside allow()


_guard = _Guard()


def install(process: str) -> None:
    """Make this process offline by default. Call first thing in every entry point and worker,
    before anything imports Hugging Face or chromadb. Idempotent."""
    early = [name for name in _LIBRARIES if name in sys.modules]
    if early and not _guard.installed:
        raise RuntimeError(f"network.install() must run before {', '.join(early)} is imported")
    if os.environ.get("HF_HUB_OFFLINE", "") in ("", "0") or os.environ.get(_OURS_ENV) == "1":
        os.environ[_OURS_ENV] = "1"
    os.environ.update(OFFLINE_ENV)
    _guard.process = process
    if not _guard.installed:
        _guard.installed = True
        sys.addaudithook(_hook)


def user_forced_offline() -> bool:
    """True when the user's own environment set HF_HUB_OFFLINE (not install())."""
    flag = os.environ.get("HF_HUB_OFFLINE", "")
    return flag not in ("", "0") and os.environ.get(_OURS_ENV) != "1"


@contextmanager
def allow(purpose: str) -> Iterator[None]:
    """Let this thread reach the network for `purpose` (a download the user started).
    Other threads stay blocked. Offline mode and policy are checked by the caller before."""
    from huggingface_hub import constants as hub

    previous = getattr(_guard.local, "purpose", None)
    _guard.local.purpose = purpose
    with _guard.lock:
        # huggingface_hub checks this module flag before each request; the audit hook, not
        # this flag, is what keeps every other thread off the network meanwhile.
        _guard.hub_users += 1
        hub.HF_HUB_OFFLINE = False
    try:
        yield
    finally:
        with _guard.lock:
            _guard.hub_users -= 1
            if _guard.hub_users == 0:
                hub.HF_HUB_OFFLINE = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        _guard.local.purpose = previous


@contextmanager
def allow_hosts(purpose: str, hosts: Iterable[str]) -> Iterator[None]:
    """Let this thread reach `hosts` (names or addresses) for `purpose` (a server the user or
    IT configured), and nothing else. The names are looked up here, inside the guard, and a
    connection passes only to a name given or an address those lookups returned: a library
    that resolved a name on its own to somewhere else is refused. Loopback always passes."""
    names = frozenset(_bare(h) for h in hosts if _bare(h))
    previous = (
        getattr(_guard.local, "purpose", None),
        getattr(_guard.local, "hosts", None),
    )
    _guard.local.purpose = purpose
    _guard.local.hosts = set(names)
    try:
        for name in names:
            if _is_local(name) or _is_address(name):
                continue
            try:
                found = socket.getaddrinfo(name, None)
            except OSError:
                continue  # the connection fails later with the resolver's own message
            _guard.local.hosts.update(_bare(str(info[4][0])) for info in found)
        yield
    finally:
        _guard.local.purpose, _guard.local.hosts = previous


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _bare(host: str) -> str:
    """A host as the hook compares it: lower case, no brackets, no zone, no final dot."""
    return host.strip().strip("[]").lower().rstrip(".").split("%")[0]


def log_file() -> Path:
    """The egress log of the data folder in use (HEARTH_HOME is read at each call)."""
    from engine import paths

    return paths.resolve().logs / LOG_NAME


def read_log(path: Path | None = None, since: float = 0.0) -> list[Attempt]:
    """Attempts recorded by any Hearth process since `since` (a time.time()), oldest first."""
    return LogFollower(log_file() if path is None else path, since).poll()


class LogFollower:
    """Reads the egress log as it grows: `poll()` returns the attempts appended since the last
    call, made at or after `since`. Cheap when nothing changed (one stat), so a UI timer can
    call it on its thread. A log last written before `since` is not read at all: the window
    does not parse months of old lines at start."""

    def __init__(self, path: Path, since: float) -> None:
        self.path = path
        self.since = since
        self._offset = 0
        self._partial = b""
        try:
            st = path.stat()
            # A second of slack: the kernel stamps mtime from a coarse clock, a few
            # milliseconds behind the time.time() an attempt just written carries.
            if st.st_mtime < since - 1.0:
                self._offset = st.st_size
        except FileNotFoundError:
            pass

    def poll(self) -> list[Attempt]:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return []
        if size < self._offset:  # replaced (data deleted): start over
            self._offset, self._partial = 0, b""
        if size == self._offset:
            return []
        with self.path.open("rb") as fh:
            fh.seek(self._offset)
            data = self._partial + fh.read(size - self._offset)
        self._offset = size
        *lines, self._partial = data.split(b"\n")
        found = []
        for line in lines:
            try:
                attempt = Attempt(**json.loads(line))
            except (ValueError, TypeError):
                continue  # a torn line from a killed process
            if attempt.time >= self.since:
                found.append(attempt)
        return found


# -- the hook ---------------------------------------------------------------------------------


def _hook(event: str, args: tuple[object, ...]) -> None:
    if event not in _SOCKET_EVENTS:
        return
    target = _target(event, args)
    if target is None:
        return
    kind, host, port = target
    purpose = getattr(_guard.local, "purpose", None)
    hosts = getattr(_guard.local, "hosts", None)
    if purpose is not None and hosts is not None and _bare(host) not in hosts:
        purpose = None  # a server's thread, but not to that server
    attempt = Attempt(
        time.time(),
        _guard.process,
        os.getpid(),
        kind,
        host,
        port,
        purpose is not None,
        purpose or f"not started by you ({_caller()})",
    )
    _record(attempt)
    if purpose is None:
        raise NetworkBlocked(
            f"Hearth blocked a network {kind} to {host}: it works offline, and only a "
            "download you start or a server you configured may use the network.",
            attempt.purpose,
        )


def _target(event: str, args: tuple[object, ...]) -> tuple[str, str, int | None] | None:
    """(kind, host, port) of a non-local attempt, or None for loopback and local sockets."""
    if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        sock, address = args[0], args[1] if len(args) > 1 else None
        family = getattr(sock, "family", None)
        if family == socket.AF_UNIX or address is None:
            return None
        kind = "connect" if event == "socket.connect" else "send"
        if family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
            host, port = _text(address[0]), address[1] if len(address) > 1 else None
            if _is_local(host):
                return None
            return kind, host, port if isinstance(port, int) else None
        return kind, f"{family!s} {address!r}"[:200], None
    if event == "socket.getaddrinfo":
        host, port = _text(args[0]), args[1]
        if _is_local(host):
            return None
        return "lookup", host, port if isinstance(port, int) else None
    if event == "socket.getnameinfo":
        address = args[0]
        host = _text(address[0]) if isinstance(address, tuple) else _text(address)
        return None if _is_local(host) else ("lookup", host, None)
    host = _text(args[0])  # gethostbyname(_ex), gethostbyaddr
    return None if _is_local(host) else ("lookup", host, None)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    return str(value)


def _is_local(host: str) -> bool:
    name = host.strip().strip("[]").lower().rstrip(".")
    if name in ("", "localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"):
        return True
    if name.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(name.split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_unspecified


def _caller() -> str:
    frame = sys._getframe(2)
    while frame is not None:
        name = str(frame.f_globals.get("__name__", "?"))
        if not name.startswith(_NET_MODULES):
            return name
        frame = frame.f_back  # type: ignore[assignment]
    return "?"


def _record(attempt: Attempt) -> None:
    line = json.dumps(asdict(attempt), ensure_ascii=True) + "\n"
    with _guard.lock:
        try:
            path = log_file()
            path.parent.mkdir(parents=True, exist_ok=True)
            # One O_APPEND write of a short line: lines from several processes never interleave.
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode("ascii"))
            finally:
                os.close(fd)
        except OSError:
            pass  # a full disk must not turn a refused connection into an allowed one


# Analytics and crash reporters that phone home; none may be importable where Hearth runs.
ANALYTICS_PACKAGES = (
    "posthog",
    "sentry_sdk",
    "raven",
    "mixpanel",
    "analytics",
    "segment",
    "amplitude",
    "bugsnag",
    "rollbar",
    "honeybadger",
    "raygun4py",
    "newrelic",
    "ddtrace",
    "datadog",
    "logrocket",
    "heap",
    "appcenter",
    "firebase_admin",
    "google.analytics",
    "opentelemetry.exporter.zipkin",
)


def analytics_packages() -> list[str]:
    """The analytics or crash-reporting packages importable in this environment."""
    import importlib.util

    found = []
    for name in ANALYTICS_PACKAGES:
        try:
            if importlib.util.find_spec(name) is not None:
                found.append(name)
        except (ImportError, ValueError):
            pass  # a parent package is missing: so is this one
    return found


def status(since: float = 0.0) -> dict[str, object]:
    """What guards this process and what it has recorded, for `hearth doctor`."""
    attempts = read_log(since=since)
    return {
        "guard_installed": _guard.installed,
        "offline_variables": {k: os.environ.get(k) for k in OFFLINE_ENV},
        "egress_log": str(log_file()),
        "attempts": len(attempts),
        "allowed": sum(a.allowed for a in attempts),
        "refused": sum(not a.allowed for a in attempts),
        "analytics_packages": analytics_packages(),
    }
