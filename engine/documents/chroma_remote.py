"""One Chroma server, as the shared collections (documents/shared.py) talk to it.

chromadb's `HttpClient` is used for the protocol, under Hearth's rules:

- Every request runs inside `servers.connection(settings, server, "chroma")` on the thread
  making it: the policy is checked at that moment and the network guard opened for that host
  alone (the egress log records it). `call()` is the only way requests are made.
- chromadb builds its HTTP session with ``timeout=None`` and the environment's proxies
  (chromadb/api/fastapi.py), and turns an HTTP error that is not its own JSON into a bare
  ``Exception(text)``, losing the status. So once the client exists its session is replaced by
  ours: timeouts from `remote.timeout_s`, certificates checked against `servers.ssl_context`
  (`remote.ca_bundle`), no proxies or redirects nobody configured, and a hook that remembers
  each response's status so that 401/403 become `ServerAuthFailed`.
- Building chromadb's client makes three requests on its own session (identity, tenant,
  database). They come after our own bounded `GET /api/v2/auth/identity` has just answered, so
  an unreachable, silent or token-refusing server is reported by ours, with a timeout; chromadb
  is told the CA bundle (`chroma_server_ssl_verify`) for its three.
- Requests we make are idempotent (get, query, upsert, delete by id), so a dropped connection
  (a server restarted mid-query) is retried with a short backoff until `retry_s` has passed,
  then ends in a ServerError that says so. Nothing waits longer than the timeouts allow.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

import httpx

from engine.errors import (
    HearthError,
    NetworkBlocked,
    ServerAuthFailed,
    ServerError,
    ServerNotAllowed,
)
from engine.remote import servers
from engine.remote.servers import Server
from engine.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
API = "/api/v2"


class ChromaServer:
    """An open chromadb client for one configured Chroma server. Use `open()`."""

    def __init__(self, settings: Settings, server: Server, client: Any, retry_s: float) -> None:
        self.settings = settings
        self.server = server
        self.client: Any = client
        self.session: httpx.Client | None = None  # ours, which chromadb's client uses
        self.retry_s = retry_s
        self._status = threading.local()

    def call(
        self, what: str, fn: Callable[..., T], /, *args: Any, writing: bool = False, **kw: Any
    ) -> T:
        """Run one chromadb request `fn(*args, **kw)` (`what` names it in messages) under the
        policy check and the network guard; retried while the connection drops, within
        `retry_s`. `writing`: a refusal (403) means the token may only read."""
        deadline = time.monotonic() + self.retry_s
        delay = 0.25
        while True:
            self._status.code = None
            try:
                with servers.connection(self.settings, self.server, "chroma"):
                    return fn(*args, **kw)
            except HearthError:
                raise
            except Exception as exc:
                error = self._mapped(exc, what, writing)
                if not _transient(exc) or time.monotonic() + delay > deadline:
                    raise error from None
                log.info("chroma %s: %s; retrying in %.2f s", self.server.key, exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def close(self) -> None:
        try:
            if self.client is not None:
                self.client.close()
        except Exception:  # already closed, or half-built
            log.debug("closing the chroma client failed", exc_info=True)
        if self.session is not None:
            self.session.close()

    def _remember(self, response: httpx.Response) -> None:
        self._status.code = response.status_code

    def _mapped(self, exc: Exception, what: str, writing: bool) -> HearthError:
        return mapped(self.server, exc, what, writing, getattr(self._status, "code", None))


@contextmanager
def open_server(
    settings: Settings, url: str, pool: dict[tuple[Any, ...], ChromaServer] | None = None
) -> Iterator[ChromaServer]:
    """A `ChromaServer` for `url`, refused (ServerNotAllowed) before any request when the
    settings or the machine policy do not allow it. Connecting is retried like any request (a
    server restarting refuses connections for a few seconds). Without `pool` it is closed at
    the end; with one (the library's) it is kept there for the next call with the same URL,
    token, timeout and CA bundle: building chromadb's client costs four requests and ~100 ms
    (bench/bench_shared_retrieval.py). The policy is checked at every request either way."""
    server = servers.parse(url)
    servers.check(settings, server, "chroma")
    timeout = float(settings.get("remote.timeout_s"))
    headers = servers.headers(server)
    key = (server.url, tuple(sorted(headers.items())), timeout, settings.get("remote.ca_bundle"))
    if pool is not None and key in pool:
        pooled = pool[key]
        pooled.settings = settings  # the settings in force now are checked at each request
        yield pooled
        return
    verify: ssl.SSLContext | bool = servers.ssl_context(settings) if server.tls else True
    session = httpx.Client(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
        verify=verify,
        headers=headers,
        trust_env=False,
        follow_redirects=False,
    )
    remote = ChromaServer(settings, server, None, retry_s=min(timeout, 20.0))
    remote.session = session
    session.event_hooks["response"] = [remote._remember]
    try:
        remote.client = remote.call("connecting", _connect, settings, server, session)
    except BaseException:
        session.close()
        raise
    if pool is not None:
        for old in [k for k in pool if k[0] == server.url]:  # another token or timeout: gone
            pool.pop(old).close()
        pool[key] = remote
        yield remote
        return
    try:
        yield remote
    finally:
        remote.close()


def _connect(settings: Settings, server: Server, session: httpx.Client) -> Any:
    """Our own bounded request first (is it there, is it Chroma, does it take the token),
    then chromadb's client, whose constructor makes three requests without a timeout."""
    response = session.get(f"{server.url}{API}/auth/identity")
    response.raise_for_status()
    body = response.json()
    if not isinstance(body, dict) or "tenant" not in body:
        raise ServerError(
            f"{server.url} answered, but not as a Chroma server does (no tenant in its "
            "identity). Is the address a Chroma server's, with its port?"
        )
    return _chroma_client(settings, server, session)


def _chroma_client(settings: Settings, server: Server, session: httpx.Client) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    # chromadb's own three requests verify with httpx's default (certifi's authorities, not
    # the system's that `servers.ssl_context` uses): give it the same file ours trusts.
    # chroma_server_ssl_verify takes a bool or a path, not an SSLContext.
    bundle = str(settings.get("remote.ca_bundle")).strip() or ssl.get_default_verify_paths().cafile
    chroma_settings = ChromaSettings(
        anonymized_telemetry=False,
        chroma_server_ssl_verify=bundle if (server.tls and bundle) else None,
    )
    headers = {k: v for k, v in session.headers.items() if k.lower() == "authorization"}
    client = chromadb.HttpClient(
        host=server.host,
        port=server.port,
        ssl=server.tls,
        headers=headers,
        settings=chroma_settings,
    )
    fastapi = cast(Any, client)._server  # chromadb.api.fastapi.FastAPI
    old = fastapi._session
    session.headers.update({k: v for k, v in old.headers.items() if k not in session.headers})
    fastapi._session = session
    old.close()
    return client


_DROPPED = (
    httpx.ConnectError,
    httpx.RemoteProtocolError,
    httpx.ReadError,
    httpx.WriteError,
    httpx.PoolTimeout,
)


def _transient(exc: BaseException) -> bool:
    """A dropped or refused connection (itself, or what chromadb wrapped), which a restarting
    server gives for a moment; never a certificate problem."""
    return _cause(exc, _DROPPED) is not None and _cause(exc, ssl.SSLError) is None


def mapped(
    server: Server, exc: BaseException, what: str, writing: bool, status: int | None
) -> HearthError:
    """A chromadb or httpx exception as a HearthError whose message says what to do."""
    from chromadb import errors as chroma_errors

    key = server.key
    blocked = _cause(exc, NetworkBlocked)
    if blocked is not None:
        return ServerNotAllowed(
            f"Hearth's network guard refused the connection to the Chroma server {key}: {blocked}"
        )
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
    if status in (401, 403) or isinstance(
        exc, chroma_errors.ChromaAuthError | chroma_errors.AuthorizationError
    ):
        if writing and status != 401:
            return ServerAuthFailed(
                f"The Chroma server {key} refused writing with Hearth's token (HTTP "
                f"{status or 403}): the token may only read. Ask whoever runs the server "
                "for a token that may write, or publish to another server.",
                str(exc),
            )
        return ServerAuthFailed(
            f"The Chroma server {key} refused Hearth's token (HTTP {status or 401}). Set the "
            "right token for this server (`hearth remote token URL`; it is kept in the "
            "keyring).",
            str(exc),
        )
    if isinstance(exc, chroma_errors.NotFoundError) or status == 404:
        return ServerError(f"The Chroma server {key} has no such collection.", str(exc))
    if _cause(exc, ssl.SSLCertVerificationError) is not None or "CERTIFICATE_VERIFY" in str(exc):
        return ServerError(
            f"The certificate of {key} could not be verified, so Hearth sent nothing. If your "
            "organisation uses its own certificate authority, set its file in remote.ca_bundle.",
            str(exc),
        )
    if isinstance(exc, httpx.TimeoutException):
        return ServerError(
            f"The Chroma server {key} did not answer in time ({what}); it may be overloaded. "
            "Try again, or raise remote.timeout_s.",
            str(exc),
        )
    if _cause(exc, httpx.ConnectError) is not None or "Could not connect" in str(exc):
        return ServerError(
            f"Hearth could not reach the Chroma server {key} ({what}). Is it running, and is "
            "the address right?",
            str(exc),
        )
    if _transient(exc):
        return ServerError(
            f"The connection to the Chroma server {key} dropped ({what}) and did not come "
            "back: the server may have restarted or stopped. Try again in a moment.",
            str(exc),
        )
    if status is not None and status >= 500:
        return ServerError(
            f"The Chroma server {key} failed ({what}, HTTP {status}). Try again later.", str(exc)
        )
    return ServerError(
        f"The Chroma server {key} could not do it ({what}): {type(exc).__name__}.", str(exc)
    )


def _cause(
    exc: BaseException | None, kind: type[BaseException] | tuple[type[BaseException], ...]
) -> BaseException | None:
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, kind):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None
