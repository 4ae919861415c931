"""Real OpenAI-compatible servers on loopback, for the remote-model tests and bench.

- `LlamaServer`: llama-cpp-python's own server (`python -m llama_cpp.server`, its `server`
  extra) on a GGUF file, in a child process on 127.0.0.1 and a free port, with an optional
  API key. `kill()` is a real SIGKILL, for the "server died mid-answer" fault.
- `FaultProxy`: a loopback TCP proxy in front of a server that can delay every chunk the
  server sends (a slow server) or cut the connection after some bytes (a drop mid-stream).

Both stop by themselves after `lifetime_s` even if a test forgets them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LlamaServer:
    model: Path
    alias: str = "smollm2"
    api_key: str | None = None
    n_ctx: int = 2048
    lifetime_s: float = 600.0
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, wait_s: float = 120.0) -> LlamaServer:
        self.port = self.port or free_port()
        argv = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.model),
            "--model_alias",
            self.alias,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(self.n_ctx),
            "--n_threads",
            "2",
        ]
        if self.api_key:
            argv += ["--api_key", self.api_key]
        # `timeout` makes the lifetime a hard limit even if this test process dies.
        argv = ["timeout", "-s", "KILL", str(int(self.lifetime_s)), *argv]
        out = open(self.log, "wb") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + wait_s
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self.proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/models", headers=headers, timeout=2).status_code == 200:
                    return self
            time.sleep(0.3)
        self.stop()
        raise RuntimeError("llama_cpp.server did not come up in time")

    def kill(self) -> None:
        """SIGKILL the server (and the `timeout` wrapper's group): a crash, not a shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    stop = kill

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class FaultProxy:
    """127.0.0.1:port -> upstream port. `delay_s` sleeps before passing on each chunk the
    upstream sends; `cut_after` closes both sides once that many response bytes went through."""

    upstream_port: int
    delay_s: float = 0.0
    cut_after: int | None = None
    lifetime_s: float = 300.0
    port: int = 0
    connections: int = 0
    _server: socket.socket | None = None
    _threads: list[threading.Thread] = field(default_factory=list)
    _stopped: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str = "/v1") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> FaultProxy:
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(16)
        self._server.settimeout(0.2)
        self.port = self._server.getsockname()[1]
        self._spawn(self._accept)
        return self

    def _spawn(self, target: object, *args: object) -> None:
        t = threading.Thread(target=target, args=args, daemon=True, name="proxy-fault")  # type: ignore[arg-type]
        t.start()
        self._threads.append(t)

    def _accept(self) -> None:
        end = time.monotonic() + self.lifetime_s
        assert self._server is not None
        while not self._stopped.is_set() and time.monotonic() < end:
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            self._spawn(self._pipe, client, upstream, False)
            self._spawn(self._pipe, upstream, client, True)

    def _pipe(self, src: socket.socket, dst: socket.socket, response: bool) -> None:
        sent = 0
        src.settimeout(0.2)
        try:
            while not self._stopped.is_set():
                try:
                    data = src.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    break
                if response and self.delay_s:
                    self._stopped.wait(self.delay_s)
                if response and self.cut_after is not None and sent + len(data) > self.cut_after:
                    dst.sendall(data[: max(0, self.cut_after - sent)])
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()

    def stop(self) -> None:
        self._stopped.set()
        if self._server is not None:
            self._server.close()
        for t in self._threads:
            t.join(2)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def make_tls_files(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path, Path]:
    """A private CA and a server certificate it signed for `host` (an IP SAN and
    "localhost"): (ca.pem, server-cert.pem, server-key.pem). Made with `cryptography`."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Example Corp Test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(host)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "server.pem", folder / "key.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, cert_file, key_file


@dataclass
class TLSProxy(FaultProxy):
    """A FaultProxy that speaks TLS to its clients (with `cert_file`/`key_file`) and plain
    HTTP to the upstream: a server behind a TLS-terminating reverse proxy."""

    cert_file: Path | None = None
    key_file: Path | None = None

    def url(self, path: str = "/v1") -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.cert_file), str(self.key_file))
        end = time.monotonic() + self.lifetime_s
        assert self._server is not None
        while not self._stopped.is_set() and time.monotonic() < end:
            try:
                raw, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            raw.settimeout(5)
            try:
                client = context.wrap_socket(raw, server_side=True)
            except (OSError, ssl.SSLError):
                raw.close()  # a client that refused our certificate
                continue
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            self._spawn(self._pipe, client, upstream, False)
            self._spawn(self._pipe, upstream, client, True)
