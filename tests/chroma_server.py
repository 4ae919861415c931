"""A real Chroma server for tests: chromadb's own `chroma run`, on 127.0.0.1 only, in a
temporary folder, bounded in time and stopped at the end.

    with ChromaProcess(tmp_path / "chroma") as server:
        server.url  # http://127.0.0.1:<free port>

`restart()` stops it (SIGTERM, then SIGKILL) and starts it again on the same port and folder,
which is what a server restarted by its operator looks like to a client.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

import httpx

CHROMA = Path(sys.executable).with_name("chroma")
START_TIMEOUT_S = 90.0  # a cold start imports chromadb first: seconds on a busy machine


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ChromaProcess:
    """`chroma run --path FOLDER --host 127.0.0.1 --port PORT` as a child process."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = folder.with_name(folder.name + ".log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ChromaProcess:
        if not CHROMA.exists():
            raise RuntimeError(f"chromadb's `chroma` command is not at {CHROMA}")
        self.folder.mkdir(parents=True, exist_ok=True)
        env = {
            k: v for k, v in os.environ.items() if "proxy" not in k.lower()
        }  # loopback only, whatever the environment says
        env["ANONYMIZED_TELEMETRY"] = "False"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(CHROMA), "run", "--path", str(self.folder), *self._where()],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # a stop reaches the whole group, nothing is left
            )
        self._wait_ready()
        return self

    def _where(self) -> list[str]:
        return ["--host", "127.0.0.1", "--port", str(self.port)]

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chroma run exited ({self.proc.returncode}): {self.tail()}")
            try:
                r = httpx.get(f"{self.url}/api/v2/heartbeat", timeout=1.0, trust_env=False)
                if r.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"chroma run did not answer within {START_TIMEOUT_S} s: {self.tail()}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """Stop it at once (SIGKILL), as a crash or a power cut would."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def tail(self, n: int = 2000) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-n:]
        except OSError:
            return "(no log)"

    def __enter__(self) -> ChromaProcess:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class AuthProxy:
    """A token-checking reverse proxy in front of a real Chroma server, as teams deploy one:
    chromadb 1.5's `chroma run` (its Rust server) ignores CHROMA_SERVER_AUTHN_* and checks no
    token itself. `tokens` maps a token to "read" or "write". A request without a known token
    gets 401; a write (anything but GET, get, query, count and search) with a "read" token gets
    403; plain text bodies, as nginx or a gateway would send, not Chroma's JSON errors."""

    READS = ("/get", "/query", "/count", "/search")

    def __init__(self, upstream: str, tokens: dict[str, str]) -> None:
        self.upstream = upstream
        self.tokens = tokens
        self.seen: list[tuple[str, str, int]] = []  # method, path, status sent back
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> AuthProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _handle(self) -> None:
                auth = self.headers.get("Authorization", "")
                token = auth.removeprefix("Bearer ").strip() or self.headers.get(
                    "X-Chroma-Token", ""
                )
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                role = proxy.tokens.get(token)
                path = self.path.split("?")[0]
                if role is None:
                    return self._reply(401, b"missing or unknown token", "text/plain")
                if role == "read" and self.command != "GET" and not path.endswith(proxy.READS):
                    return self._reply(403, b"this token may only read", "text/plain")
                with httpx.Client(trust_env=False, timeout=30) as client:
                    r = client.request(
                        self.command,
                        proxy.upstream + self.path,
                        content=body,
                        headers={"Content-Type": self.headers.get("Content-Type", "")},
                    )
                self._reply(r.status_code, r.content, r.headers.get("content-type", ""))

            def _reply(self, status: int, body: bytes, kind: str) -> None:
                proxy.seen.append((self.command, self.path, status))
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="chroma-auth-proxy", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
