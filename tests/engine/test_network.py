"""The offline guard: what it sets, what it refuses, what it records (engine/network.py).

The suite itself runs under the guard (tests/conftest.py installs it), so these tests exercise
the real audit hook of this process. 192.0.2.1 is TEST-NET-1: never routed anywhere.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from engine import network
from engine.errors import NetworkBlocked

ROOT = Path(__file__).resolve().parents[2]


def test_offline_and_telemetry_variables_reach_the_libraries() -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in network.OFFLINE_ENV and k != "HEARTH_SET_HF_OFFLINE"
    }
    probe = (
        "from engine import network; network.install('probe');"
        "import huggingface_hub.constants as hub, chromadb.config as cc;"
        "import json; print(json.dumps([hub.HF_HUB_OFFLINE, hub.HF_HUB_DISABLE_TELEMETRY,"
        " hub.HF_HUB_DISABLE_IMPLICIT_TOKEN, cc.Settings().anonymized_telemetry]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert json.loads(out) == [True, True, True, False]


def test_installing_after_hugging_face_was_imported_is_refused() -> None:
    probe = "import huggingface_hub; from engine import network;network.install('late')"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0 and "must run before huggingface_hub" in result.stderr


def test_lookup_and_connect_beyond_loopback_are_refused_and_logged(hearth_home: Path) -> None:
    with pytest.raises(NetworkBlocked, match=r"example\.com"):
        socket.getaddrinfo("example.com", 443)
    with socket.socket() as sock, pytest.raises(NetworkBlocked, match=r"192\.0\.2\.1"):
        sock.connect(("192.0.2.1", 80))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, pytest.raises(NetworkBlocked):
        udp.sendto(b"x", ("192.0.2.1", 53))
    logged = network.read_log(hearth_home / "logs" / network.LOG_NAME)
    assert [(a.kind, a.host, a.port, a.allowed) for a in logged] == [
        ("lookup", "example.com", 443, False),
        ("connect", "192.0.2.1", 80, False),
        ("send", "192.0.2.1", 53, False),
    ]
    assert all(a.process == "tests" and a.pid == os.getpid() for a in logged)
    assert "test_network" in logged[0].purpose  # who tried is named


def test_a_library_that_tries_on_its_own_sees_no_network(hearth_home: Path) -> None:
    with pytest.raises(urllib.error.URLError) as caught:
        urllib.request.urlopen("http://example.com/", timeout=2)
    assert isinstance(caught.value.reason, NetworkBlocked)
    assert [a.host for a in network.read_log()] == ["example.com"]


def test_loopback_and_local_sockets_pass_unrecorded(hearth_home: Path, tmp_path: Path) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    try:
        for host in ("127.0.0.1", "localhost"):
            with socket.create_connection((host, server.getsockname()[1]), timeout=5):
                pass
    finally:
        server.close()
    path = str(tmp_path / "s.sock")
    with socket.socket(socket.AF_UNIX) as listener, socket.socket(socket.AF_UNIX) as client:
        listener.bind(path)
        listener.listen()
        client.connect(path)
    assert network.read_log() == []


def test_allow_opens_only_its_own_thread(hearth_home: Path) -> None:
    import huggingface_hub.constants as hub

    results: dict[str, object] = {}
    inside = threading.Event()
    done = threading.Event()

    def download() -> None:
        with network.allow("download test/model.gguf"):
            results["hub_offline_inside"] = hub.HF_HUB_OFFLINE
            inside.set()
            with socket.socket() as sock:
                sock.settimeout(0.2)
                try:
                    sock.connect(("192.0.2.1", 80))
                except NetworkBlocked as exc:
                    results["download"] = exc
                except OSError as exc:  # unreachable or timed out: the attempt was let through
                    results["download"] = type(exc).__name__
            done.wait(10)

    thread = threading.Thread(target=download, name="hearth-test-download")
    thread.start()
    assert inside.wait(10)
    with socket.socket() as sock, pytest.raises(NetworkBlocked):
        sock.connect(("192.0.2.1", 81))  # another thread, at the same moment
    done.set()
    thread.join(10)
    assert not isinstance(results["download"], NetworkBlocked)
    assert results["hub_offline_inside"] is False and hub.HF_HUB_OFFLINE is True
    logged = [(a.port, a.allowed, a.purpose) for a in network.read_log()]
    assert (80, True, "download test/model.gguf") in logged
    assert any(port == 81 and not allowed for port, allowed, _ in logged)


def test_the_log_is_shared_by_processes_and_survives_torn_lines(hearth_home: Path) -> None:
    probe = (
        "from engine import network; network.install('documents worker');\n"
        "import socket\ntry: socket.gethostbyname('updates.example.org')\n"
        "except OSError: pass"
    )
    subprocess.run([sys.executable, "-c", probe], cwd=ROOT, timeout=120, check=True)
    with pytest.raises(NetworkBlocked):
        socket.gethostbyname("telemetry.example.org")
    log = hearth_home / "logs" / network.LOG_NAME
    with log.open("a") as fh:
        fh.write('{"time": 1, "process": "model wor')  # a process killed mid-write
    logged = network.read_log()
    assert {(a.process, a.host) for a in logged} == {
        ("documents worker", "updates.example.org"),
        ("tests", "telemetry.example.org"),
    }
    assert network.read_log(since=logged[-1].time) == logged[-1:]


def test_no_analytics_or_crash_reporting_package_is_importable() -> None:
    assert network.analytics_packages() == []


def test_the_analytics_check_can_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sentry_sdk").mkdir()
    (tmp_path / "sentry_sdk" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert network.analytics_packages() == ["sentry_sdk"]
