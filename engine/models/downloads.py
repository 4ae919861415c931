"""Resumable, verified model downloads through huggingface_hub.

`download()` is a generator of progress events. The order of checks is deliberate: policy and
file-name checks run before any request; one HEAD (huggingface_hub's `get_hf_file_metadata`)
gives the exact size, commit and LFS sha256; the free-space check runs before the first byte;
bytes go to a partial file under `models/.partial/` that survives the process, so the next
attempt, in this process or another, continues with an HTTP Range request. The finished file
is hashed, checked against the catalog or the server's LFS sha256, and only then moved into the
models folder in one rename. A file that fails the check is moved to `models/.quarantine/`.

Closing the generator (a Cancel button, Ctrl-C) stops after the current chunk and keeps the
partial file.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import time
from collections import deque
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import gguf, network
from engine.errors import (
    ChecksumMismatch,
    DownloadError,
    DownloadsDisabled,
    InvalidModelFile,
    NotEnoughSpace,
    RemoteError,
    UnsafeFileName,
)
from engine.files import check_space, sha256_file
from engine.models import catalog as catalog_mod
from engine.models import registry
from engine.paths import DataPaths

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
PROGRESS_INTERVAL_S = 0.1
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_GIT_SHA1 = re.compile(r"^[0-9a-f]{40}$")
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")
_NAME_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ +-]{0,199}$")


@dataclass(frozen=True)
class DownloadConfig:
    """Where to download from and what is allowed; built from settings by `from_settings`."""

    endpoint: str = "https://huggingface.co"
    token: str | None = None
    offline: bool = False
    allowed: bool = True
    allowed_models: tuple[str, ...] = ()
    allowed_sha256: tuple[str, ...] = ()
    retries: int = 4
    backoff_s: float = 0.5
    timeout_s: float = 20.0
    # Why the machine policy fixed offline mode or downloads (its reason), if it did: a
    # refusal then says who decided, instead of pointing at a setting the user cannot change.
    offline_locked: str | None = None
    allowed_locked: str | None = None
    models_locked: str | None = None  # the reason behind allowed_models
    sha256_locked: str | None = None  # the reason behind allowed_sha256

    @classmethod
    def from_settings(cls, settings: Any, token: str | None = None) -> DownloadConfig:
        return cls(
            endpoint=str(settings.get("downloads.endpoint")).rstrip("/"),
            token=token or os.environ.get("HF_TOKEN") or None,
            offline=bool(settings.get("privacy.offline_mode")),
            allowed=bool(settings.get("downloads.allowed")),
            allowed_models=tuple(settings.get("downloads.allowed_models")),
            allowed_sha256=tuple(h.strip().lower() for h in settings.get("models.allowed_sha256")),
            offline_locked=settings.locked.get("privacy.offline_mode"),
            allowed_locked=settings.locked.get("downloads.allowed"),
            models_locked=settings.locked.get("downloads.allowed_models"),
            sha256_locked=settings.locked.get("models.allowed_sha256"),
        )


@dataclass(frozen=True)
class DownloadRequest:
    repo: str
    file: str
    revision: str = "main"
    sha256: str | None = None  # expected, from the catalog
    catalog_id: str | None = None

    @classmethod
    def for_model(cls, model: catalog_mod.CatalogModel) -> DownloadRequest:
        return cls(model.repo, model.file, model.revision, model.sha256, model.id)


@dataclass(frozen=True)
class DownloadProgress:
    stage: str  # "connecting", "checking partial file", "downloading", "verifying", "retrying"
    done: int
    total: int
    speed_bps: float = 0.0
    eta_s: float | None = None
    resumed_from: int = 0
    message: str = ""

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


@dataclass(frozen=True)
class DownloadDone:
    path: Path
    sha256: str
    size: int
    resumed_from: int
    fetched_bytes: int
    commit: str | None
    verified_against: str  # "catalog", "server LFS sha256" or "server git hash"
    already_installed: bool = False


@dataclass
class _State:
    """What we knew about the remote file when the partial file was started."""

    repo: str
    file: str
    revision: str
    etag: str | None
    commit: str | None
    size: int
    expected_sha256: str | None
    extra: dict[str, Any] = field(default_factory=dict)


# -- checks that run before any request -------------------------------------------------------


def check_file_name(name: str) -> str:
    """Return the file's base name, or raise UnsafeFileName for anything that could escape."""
    problem = None
    if not name or len(name) > 512:
        problem = "it is empty or too long"
    elif "\x00" in name or any(ord(c) < 32 for c in name):
        problem = "it contains control characters"
    elif "\\" in name:
        problem = "it contains a backslash"
    elif name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        problem = "it is an absolute path"
    else:
        parts = name.split("/")
        if any(p in ("", ".", "..") for p in parts):
            problem = "it contains '..', '.' or an empty folder name"
        elif not all(_NAME_PART.match(p) for p in parts):
            problem = "it contains characters we do not accept in file names"
    if problem:
        raise UnsafeFileName(f"Refused to download “{name[:80]}”: {problem}.")
    return name.split("/")[-1]


def refusal(request: DownloadRequest, config: DownloadConfig) -> str | None:
    """Why this computer will not download `request` (offline, turned off, not on the
    policy's lists), for a button to say before anyone presses it; None when it may."""
    try:
        check_request(request, config)
    except DownloadsDisabled as exc:
        return exc.user_message
    except UnsafeFileName:
        return None  # a catalog error, reported when tried
    return None


def check_request(request: DownloadRequest, config: DownloadConfig) -> None:
    """Refuse, before any request, what this computer may not download (offline mode, the
    policy) and names that are not a repository, revision or file name."""
    if config.offline:
        raise DownloadsDisabled(
            f"Your organisation keeps Hearth offline, so it will not download anything "
            f"({config.offline_locked}). Ask your IT department for the model."
            if config.offline_locked
            else "Offline mode is on, so Hearth will not download anything. "
            "Turn it off in Settings > Privacy and downloads to download models."
        )
    if network.user_forced_offline():
        raise DownloadsDisabled(
            "Hugging Face offline mode (HF_HUB_OFFLINE) is set in your "
            "environment, so Hearth will not download anything."
        )
    if not config.allowed:
        raise DownloadsDisabled(
            f"Your organisation has turned model downloads off on this computer "
            f"({config.allowed_locked}). Ask your IT department for the model."
            if config.allowed_locked
            else "Model downloads are turned off in Settings > Privacy and downloads."
        )
    if config.allowed_models and request.catalog_id not in config.allowed_models:
        raise DownloadsDisabled(
            f"This computer's policy does not allow downloading "
            f"“{request.catalog_id or request.file}”"
            + (f" ({config.models_locked})." if config.models_locked else ".")
        )
    if config.allowed_sha256 and (request.sha256 or "").lower() not in config.allowed_sha256:
        raise DownloadsDisabled(
            f"This computer's policy allows only models with listed SHA-256 "
            f"checksums, and “{request.catalog_id or request.file}” is not "
            "one of them" + (f" ({config.sha256_locked})." if config.sha256_locked else ".")
        )
    if not _REPO_ID.match(request.repo):
        raise UnsafeFileName(
            f"Refused to download from “{request.repo[:80]}”: not a repository id."
        )
    if not _REVISION.match(request.revision) or ".." in request.revision:
        raise UnsafeFileName(f"Refused revision “{request.revision[:80]}”.")
    if request.sha256 is not None and not _SHA256.match(request.sha256):
        raise UnsafeFileName("The expected sha256 is not a sha256.")
    check_file_name(request.file)


# -- the download -----------------------------------------------------------------------------


def partial_dir(paths: DataPaths) -> Path:
    return paths.models / ".partial"


def quarantine_dir(paths: DataPaths) -> Path:
    return paths.models / ".quarantine"


def _key(request: DownloadRequest) -> str:
    raw = f"{request.repo}\n{request.revision}\n{request.file}".encode()
    return hashlib.sha256(raw).hexdigest()[:24]


def download(
    request: DownloadRequest,
    paths: DataPaths,
    config: DownloadConfig,
) -> Generator[DownloadProgress | DownloadDone, None, None]:
    """Download one file into the models folder, yielding progress and finally DownloadDone."""
    check_request(request, config)
    base_name = check_file_name(request.file)
    from filelock import FileLock, Timeout

    partial_dir(paths).mkdir(parents=True, exist_ok=True)
    key = _key(request)
    lock = FileLock(str(partial_dir(paths) / f"{key}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise DownloadError(
            "This model is already being downloaded by another Hearth window or command."
        ) from None
    try:
        # The one place Hearth opens the network: this thread, for this file, while it lasts.
        with network.allow(f"download {request.repo}/{request.file}"):
            yield from _download_locked(request, paths, config, base_name, key)
    finally:
        lock.release()


def _download_locked(
    request: DownloadRequest, paths: DataPaths, config: DownloadConfig, base_name: str, key: str
) -> Iterator[DownloadProgress | DownloadDone]:
    from huggingface_hub import hf_hub_url

    yield DownloadProgress("connecting", 0, 0, message=config.endpoint)
    url = hf_hub_url(
        request.repo, request.file, revision=request.revision, endpoint=config.endpoint
    )
    meta = _with_retries(lambda: _metadata(url, config), config, "read the file's details")
    size = meta.size
    if size is None:
        raise RemoteError(
            "The server did not say how large the file is, so it cannot be checked or resumed."
        )
    server_hash = (meta.etag or "").lower()
    expected, verified_against = _expected_hash(request, server_hash)

    part = partial_dir(paths) / f"{key}.part"
    state_path = partial_dir(paths) / f"{key}.json"
    state = _State(
        request.repo, request.file, request.revision, meta.etag, meta.commit_hash, size, expected
    )
    resume_from = _resumable_bytes(part, state_path, state)

    target = paths.models / base_name
    if target.exists() and target.stat().st_size == size:
        if _feed(_hasher(verified_against, size), target).hexdigest() == expected:
            _forget_partial(part, state_path)
            yield DownloadDone(
                target,
                sha256_file(target),
                size,
                0,
                0,
                meta.commit_hash,
                verified_against,
                already_installed=True,
            )
            return
        target = paths.models / f"{Path(base_name).stem}-{key[:8]}{Path(base_name).suffix}"

    check_space(paths.models, size - resume_from, size)
    state_path.write_text(json.dumps(state.__dict__), encoding="utf-8")

    hasher = _hasher(verified_against, size)
    if resume_from:
        yield DownloadProgress("checking partial file", 0, resume_from, resumed_from=resume_from)
        _feed(hasher, part)

    fetched = 0
    done = resume_from
    speed = _Speed()
    failures = 0
    last_emit = 0.0
    while done < size:
        try:
            for n in _fetch(meta.location, part, done, size, hasher, config):
                done += n
                fetched += n
                failures = 0
                speed.add(n)
                now = time.monotonic()
                if now - last_emit >= PROGRESS_INTERVAL_S or done == size:
                    last_emit = now
                    bps = speed.rate()
                    eta = (size - done) / bps if bps > 0 else None
                    yield DownloadProgress("downloading", done, size, bps, eta, resume_from)
        except _Transient as exc:
            failures += 1
            if failures > config.retries:
                raise RemoteError(
                    f"The download kept failing ({exc}). The part already "
                    f"downloaded is kept; try again later.",
                    str(exc),
                ) from None
            delay = config.backoff_s * 2 ** (failures - 1)
            log.warning(
                "download of %s interrupted (%s); retry %d in %.1fs",
                request.file,
                exc,
                failures,
                delay,
            )
            yield DownloadProgress(
                "retrying",
                done,
                size,
                0.0,
                None,
                resume_from,
                message=f"{exc}; retrying in {delay:.1f} s",
            )
            time.sleep(delay)
            # a restart from zero (server ignored Range) reset the file; follow it
            done = part.stat().st_size if part.exists() else 0
            if done == 0:
                hasher = _hasher(verified_against, size)

    yield DownloadProgress("verifying", size, size, resumed_from=resume_from)
    digest = hasher.hexdigest()
    if digest != expected:
        where = _quarantine(paths, part, base_name, f"expected {expected}, got {digest}")
        _forget_partial(part, state_path)
        raise ChecksumMismatch(
            f"The downloaded “{base_name}” is not the file that was promised (its checksum does "
            f"not match), so it was not installed. It was moved to {where.parent}. Try again; "
            "if it happens again, the server or mirror is serving a different file.",
            f"expected {expected} ({verified_against}), got {digest}",
        )
    sha256 = digest if verified_against != "server git hash" else sha256_file(part)
    if base_name.lower().endswith(".gguf"):
        try:
            gguf.inspect(part)
        except InvalidModelFile as exc:
            _quarantine(paths, part, base_name, exc.user_message)
            _forget_partial(part, state_path)
            raise ChecksumMismatch(
                f"“{base_name}” downloaded intact but is not a usable GGUF "
                f"file: {exc.user_message} It was quarantined."
            ) from None
    with part.open("rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(part, target)
    _forget_partial(part, state_path)
    registry.Registry(paths).put(
        request.catalog_id or registry.slug(target.stem),
        {
            "path": str(target),
            "source": "downloaded",
            "sha256": sha256,
            "catalog_id": request.catalog_id,
            "repo": request.repo,
            "revision": meta.commit_hash or request.revision,
            "file": request.file,
        },
    )
    yield DownloadDone(
        target, sha256, size, resume_from, fetched, meta.commit_hash, verified_against
    )


# -- pieces -----------------------------------------------------------------------------------


class _Transient(Exception):
    """A failure worth retrying: 5xx, 429, a dropped connection, a timeout."""


def _metadata(url: str, config: DownloadConfig) -> Any:
    import httpx2
    from huggingface_hub import get_hf_file_metadata
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return get_hf_file_metadata(
            url, token=config.token or False, timeout=config.timeout_s, endpoint=config.endpoint
        )
    except GatedRepoError:
        raise RemoteError(
            "This model is gated: accept its licence on the model's page, then give "
            "Hearth an access token (HF_TOKEN)."
        ) from None
    except RepositoryNotFoundError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status == 401:
            raise RemoteError(
                "The server asks for a login (401): the repository is private or "
                "gated. Set an access token (HF_TOKEN) and try again."
            ) from None
        raise RemoteError("The server has no such repository (404).", str(exc)[:200]) from None
    except RevisionNotFoundError:
        raise RemoteError("The repository has no such revision (404).") from None
    except RemoteEntryNotFoundError:
        raise RemoteError("The repository has no such file at this revision (404).") from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        if status in (401, 403):
            raise RemoteError(
                f"The server refused access ({status}). Check the access token.", str(exc)[:200]
            ) from None
        if status == 404:
            raise RemoteError("The server has no such file (404).", str(exc)[:200]) from None
        if status == 429 or status >= 500:
            raise _Transient(f"server error {status}") from None
        raise RemoteError(f"The server answered {status}.", str(exc)[:200]) from None
    except (httpx2.TransportError, OSError) as exc:
        raise _Transient(f"cannot reach {config.endpoint}: {type(exc).__name__}") from None


def _with_retries(call: Any, config: DownloadConfig, what: str) -> Any:
    attempt = 0
    while True:
        try:
            return call()
        except _Transient as exc:
            attempt += 1
            if attempt > config.retries:
                offline = "cannot reach" in str(exc)
                msg = (
                    f"Could not reach {config.endpoint}. Are you offline? Hearth tried "
                    f"{attempt} times."
                    if offline
                    else f"The server kept failing ({exc}) after {attempt} tries."
                )
                raise RemoteError(msg, f"while trying to {what}") from None
            time.sleep(config.backoff_s * 2 ** (attempt - 1))


def _fetch(
    location: str, part: Path, start: int, size: int, hasher: Any, config: DownloadConfig
) -> Iterator[int]:
    """Append bytes from `start` to `part`, yielding the count of each chunk written."""
    import httpx2
    from huggingface_hub.utils import build_hf_headers, get_session

    # A token is for the Hub or the mirror itself; a redirect to a CDN's signed URL must not
    # carry it (huggingface_hub follows the same rule for its HEAD requests).
    same_origin = _origin(location) == _origin(config.endpoint)
    headers = build_hf_headers(token=(config.token or False) if same_origin else False)
    headers["Accept-Encoding"] = "identity"
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        with get_session().stream(
            "GET", location, headers=headers, follow_redirects=True, timeout=config.timeout_s
        ) as response:
            status = response.status_code
            if status == 429 or status >= 500:
                raise _Transient(f"server error {status}")
            if status >= 400:
                raise RemoteError(f"The server refused the download ({status}).")
            if start and status == 200:
                log.info("server ignored the Range request; starting %s again", part.name)
                start = 0
                part.write_bytes(b"")
                raise _Transient("server ignored the resume request")
            if start and status == 206:
                content_range = response.headers.get("Content-Range", "")
                if not content_range.startswith(f"bytes {start}-"):
                    raise RemoteError("The server resumed from the wrong place.", content_range)
            with part.open("ab" if start else "wb") as fh:
                written = start
                for block in response.iter_bytes(CHUNK):
                    if written + len(block) > size:
                        raise RemoteError("The server sent more bytes than the file has.")
                    try:
                        fh.write(block)
                    except OSError as exc:
                        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                            raise NotEnoughSpace(
                                "The disk filled up during the download. The part already "
                                "downloaded is kept: free some space and download again to "
                                "continue."
                            ) from None
                        raise
                    hasher.update(block)
                    written += len(block)
                    yield len(block)
            if written < size:
                raise _Transient(f"connection closed at {written} of {size} bytes")
    except httpx2.TransportError as exc:
        raise _Transient(f"{type(exc).__name__}") from None


def _origin(url: str) -> tuple[str, str, int | None]:
    from urllib.parse import urlparse

    parsed = urlparse(url)
    return parsed.scheme, parsed.hostname or "", parsed.port


def _expected_hash(request: DownloadRequest, server_hash: str) -> tuple[str, str]:
    if request.sha256:
        if _SHA256.match(server_hash) and server_hash != request.sha256:
            raise ChecksumMismatch(
                "The server's file is not the one the catalog pins (different sha256), so "
                "nothing was downloaded.",
                f"catalog {request.sha256}, server {server_hash}",
            )
        return request.sha256, "catalog"
    if _SHA256.match(server_hash):
        return server_hash, "server LFS sha256"
    if _GIT_SHA1.match(server_hash):
        return server_hash, "server git hash"
    raise RemoteError(
        "The server gave no checksum for this file and the catalog has none, so "
        "Hearth cannot verify it and will not download it."
    )


class _GitBlobHasher:
    """git's blob id: sha1 over 'blob <size>\\0' + content (the ETag of a non-LFS Hub file)."""

    def __init__(self, size: int) -> None:
        self._h = hashlib.sha1(f"blob {size}\0".encode(), usedforsecurity=False)

    def update(self, data: bytes) -> None:
        self._h.update(data)

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def _hasher(verified_against: str, size: int) -> Any:
    return _GitBlobHasher(size) if verified_against == "server git hash" else hashlib.sha256()


def _feed(hasher: Any, path: Path) -> Any:
    """Hash a whole file into `hasher` (sha256 or git blob) and return it."""
    with path.open("rb") as fh:
        while block := fh.read(CHUNK):
            hasher.update(block)
    return hasher


def _resumable_bytes(part: Path, state_path: Path, state: _State) -> int:
    """Bytes of a partial file we may continue from; 0 (and the file removed) otherwise."""
    if not part.exists():
        return 0
    try:
        old = json.loads(state_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        old = None
    have = part.stat().st_size
    same = (
        old is not None
        and old.get("etag") == state.etag
        and old.get("size") == state.size
        and state.etag is not None
    )
    if not same or have > state.size:
        log.info("discarding partial %s: remote file changed or state unreadable", part.name)
        part.unlink(missing_ok=True)
        return 0
    return have


def _quarantine(paths: DataPaths, part: Path, base_name: str, reason: str) -> Path:
    qdir = quarantine_dir(paths)
    qdir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    dest = qdir / f"{base_name}.{stamp}.rejected"
    os.replace(part, dest)
    (qdir / f"{dest.name}.json").write_text(
        json.dumps({"file": base_name, "reason": reason}), encoding="utf-8"
    )
    log.warning("quarantined %s: %s", dest, reason)
    return dest


def _forget_partial(part: Path, state_path: Path) -> None:
    part.unlink(missing_ok=True)
    state_path.unlink(missing_ok=True)


class _Speed:
    """Bytes per second over the last few seconds (a plain average would hide a stall)."""

    WINDOW_S = 3.0

    def __init__(self) -> None:
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, n: int) -> None:
        now = time.monotonic()
        self._samples.append((now, n))
        while self._samples and now - self._samples[0][0] > self.WINDOW_S:
            self._samples.popleft()

    def rate(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        span = self._samples[-1][0] - self._samples[0][0]
        return sum(n for _, n in list(self._samples)[1:]) / span if span > 0 else 0.0


def discard_partial(request: DownloadRequest, paths: DataPaths) -> bool:
    """Cancel a paused download: delete what was fetched. False if another process holds it."""
    from filelock import FileLock, Timeout

    key = _key(request)
    lock = FileLock(str(partial_dir(paths) / f"{key}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return False
    try:
        _forget_partial(partial_dir(paths) / f"{key}.part", partial_dir(paths) / f"{key}.json")
    finally:
        lock.release()
    return True


def partial_downloads(paths: DataPaths) -> list[dict[str, Any]]:
    """Downloads that stopped part-way and can be resumed."""
    out = []
    for state_path in sorted(partial_dir(paths).glob("*.json")):
        part = state_path.with_suffix(".part")
        try:
            state = json.loads(state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        have = part.stat().st_size if part.exists() else 0
        out.append({**state, "have": have})
    return out
