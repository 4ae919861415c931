"""A loopback server that speaks the Hugging Face file protocol, for tests and the bench.

Like the Hub it has two origins: the "hub" answers HEAD/GET on
`/{repo}/resolve/{revision}/{file}` with the commit, ETag, X-Linked-Etag (the LFS sha256) and
X-Linked-Size headers and redirects LFS files to the "cdn", a second listener on another port
that serves the bytes with Range support. Errors carry the Hub's X-Error-Code headers, so
huggingface_hub raises its real typed errors.

Faults can be injected (status codes for the next requests, a throttle, corrupted bytes, a huge
advertised size) and every request is recorded. Both listeners bind 127.0.0.1 only and stop by
themselves after `lifetime_s` even if a test forgets them.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

COMMIT = "60a64192f5f119a5c6655414255296937aa54a03"


@dataclass
class HostedFile:
    repo: str
    name: str
    data_path: Path
    revision: str = COMMIT
    corrupt: bool = False  # flip one byte in what is served (the headers stay honest)
    advertised_size: int | None = None  # lie about the size in the HEAD answer
    sha256: str = ""
    size: int = 0

    def __post_init__(self) -> None:
        digest = hashlib.sha256()
        with self.data_path.open("rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
        self.sha256 = digest.hexdigest()
        self.size = self.data_path.stat().st_size


@dataclass
class Request:
    origin: str  # "hub" or "cdn"
    method: str
    path: str
    range: str | None
    status: int
    sent: int = 0
    authorized: bool = False


@dataclass
class HFServer:
    files: list[HostedFile] = field(default_factory=list)
    throttle_bps: float = 0.0  # 0 = as fast as possible
    fail_next: list[int] = field(default_factory=list)  # statuses for the next hub requests
    private_repos: set[str] = field(default_factory=set)  # answer 401 without a token
    lifetime_s: float = 300.0
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._hub = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self, "hub"))
        self._cdn = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self, "cdn"))
        for srv in (self._hub, self._cdn):
            srv.daemon_threads = True
        self._threads: list[threading.Thread] = []
        self._timer: threading.Timer | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._hub.server_address[1]}"

    @property
    def cdn(self) -> str:
        return f"http://127.0.0.1:{self._cdn.server_address[1]}"

    def bytes_sent(self) -> int:
        with self._lock:
            return sum(r.sent for r in self.requests)

    def gets(self) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.method == "GET"]

    def start(self) -> HFServer:
        for srv in (self._hub, self._cdn):
            t = threading.Thread(
                target=srv.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="hf-loopback",
                daemon=True,
            )
            t.start()
            self._threads.append(t)
        self._timer = threading.Timer(self.lifetime_s, self.stop)
        self._timer.daemon = True
        self._timer.name = "hf-loopback-timer"
        self._timer.start()
        return self

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if not self._threads:
            return
        for srv in (self._hub, self._cdn):
            srv.shutdown()
            srv.server_close()
        for t in self._threads:
            t.join(timeout=5)
        self._threads.clear()
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.join(timeout=5)

    def __enter__(self) -> HFServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _record(self, req: Request) -> Request:
        with self._lock:
            self.requests.append(req)
        return req

    def _take_fault(self) -> int | None:
        with self._lock:
            return self.fail_next.pop(0) if self.fail_next else None


def _handler(server: HFServer, origin: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: object) -> None:  # keep test output clean
            pass

        def do_HEAD(self) -> None:
            self._serve(head=True)

        def do_GET(self) -> None:
            self._serve(head=False)

        def _error(self, status: int, code: str | None, req: Request) -> None:
            req.status = status
            body = f'{{"error": "{code or status}"}}'.encode()
            self.send_response(status)
            if code:
                self.send_header("X-Error-Code", code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _serve(self, head: bool) -> None:
            path = unquote(urlparse(self.path).path)
            req = server._record(
                Request(
                    origin,
                    self.command,
                    path,
                    self.headers.get("Range"),
                    0,
                    authorized=bool(self.headers.get("Authorization")),
                )
            )
            if origin == "hub":
                self._hub(path, req)
            else:
                self._cdn(path, req, head)

        def _hub(self, path: str, req: Request) -> None:
            fault = server._take_fault()
            if fault:
                self._error(fault, None, req)
                return
            parts = path.strip("/").split("/")
            if len(parts) < 5 or parts[2] != "resolve":
                self._error(404, "RepoNotFound", req)
                return
            repo, revision, name = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
            if repo in server.private_repos and not req.authorized:
                self._error(401, "RepoNotFound", req)
                return
            in_repo = [f for f in server.files if f.repo == repo]
            if not in_repo:
                self._error(404, "RepoNotFound", req)
                return
            at_rev = [f for f in in_repo if revision in (f.revision, "main")]
            if not at_rev:
                self._error(404, "RevisionNotFound", req)
                return
            hosted = next((f for f in at_rev if f.name == name), None)
            if hosted is None:
                self._error(404, "EntryNotFound", req)
                return
            size = hosted.advertised_size or hosted.size
            req.status = 302
            self.send_response(302)
            self.send_header("X-Repo-Commit", hosted.revision)
            self.send_header("ETag", f'"{hashlib.sha1(hosted.sha256.encode()).hexdigest()}"')
            self.send_header("X-Linked-Etag", f'"{hosted.sha256}"')
            self.send_header("X-Linked-Size", str(size))
            self.send_header("Location", f"{server.cdn}/cdn/{hosted.sha256}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _cdn(self, path: str, req: Request, head: bool) -> None:
            sha = path.rsplit("/", 1)[-1]
            hosted = next((f for f in server.files if f.sha256 == sha), None)
            if hosted is None:
                self._error(404, None, req)
                return
            start, end = 0, hosted.size - 1
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes="):
                first, _, last = rng[6:].partition("-")
                start = int(first or 0)
                end = int(last) if last else hosted.size - 1
                if start >= hosted.size:
                    self._error(416, None, req)
                    return
            length = end - start + 1
            req.status = 206 if rng else 200
            self.send_response(req.status)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", f'"{hosted.sha256}"')
            self.send_header("Content-Length", str(length))
            if rng:
                self.send_header("Content-Range", f"bytes {start}-{end}/{hosted.size}")
            self.end_headers()
            if head:
                return
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._send_bytes(hosted, start, length, req)

        def _send_bytes(self, hosted: HostedFile, start: int, length: int, req: Request) -> None:
            chunk = 64 * 1024
            began = time.monotonic()
            with hosted.data_path.open("rb") as fh:
                fh.seek(start)
                remaining = length
                pos = start
                while remaining:
                    block = fh.read(min(chunk, remaining))
                    if not block:
                        break
                    middle = hosted.size // 2
                    if hosted.corrupt and pos <= middle < pos + len(block):
                        i = middle - pos
                        block = block[:i] + bytes([block[i] ^ 0xFF]) + block[i + 1 :]
                    self.wfile.write(block)
                    req.sent += len(block)
                    remaining -= len(block)
                    pos += len(block)
                    if server.throttle_bps:
                        ahead = req.sent / server.throttle_bps - (time.monotonic() - began)
                        if ahead > 0:
                            time.sleep(ahead)

    return Handler
