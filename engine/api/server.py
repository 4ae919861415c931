"""The HTTP side of the API: the standard library's threading server, with the defences a
server on a desktop needs.

- Off unless started; loopback only unless the machine policy lists another address
  (`check_bind`); the policy can also forbid the server outright.
- Every request carries the installation's bearer token (`engine.api.token`), compared in
  constant time; 401 otherwise. No route answers without it.
- Browsers: a request with an `Origin` header is refused unless that origin is listed
  (`api.cors_origins`, empty by default), and on a loopback address the `Host` header must
  name loopback too, which defeats DNS rebinding.
- Limits: request bodies (`api.max_request_mb`; 413), header read timeouts, a cap on open
  connections, and a queue of at most `api.max_queue` waiting answers (503 past it).
- Requests that need the model wait in a FIFO queue, then in the runtime's own turn, which the
  window shares: one model, one answer at a time. A client that disconnects while waiting or
  while its answer streams gives up its place, and its answer is stopped.
- Each request leaves one audit entry without content (`engine.api.audit`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import select
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from engine import errors
from engine.api import protocol, token
from engine.api.audit import AuditLog, Entry
from engine.api.backend import Backend, Job, Recorded
from engine.api.gate import Gate
from engine.api.protocol import ApiError
from engine.documents.events import Grounded, NothingRelevant, Retrieved
from engine.errors import Cancelled, HearthError
from engine.paths import DataPaths
from engine.runtime.events import Done, Notice, TextPiece

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 64
READ_TIMEOUT_S = 30.0  # a client must send its request within this (slow-loris guard)
DRAIN_MAX = 64 * 1024 * 1024  # a refused body up to this size is read and dropped
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


class ApiServerError(HearthError):
    """The API server cannot start as asked (policy, address, port in use)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, settings: Any) -> None:
    """Raise ApiServerError unless the server may listen on `host` at all."""
    if "api.enabled" in settings.locked and not settings.get("api.enabled"):
        raise ApiServerError(
            "The API server is turned off by your organisation's policy: "
            f"{settings.locked['api.enabled']}"
        )
    if is_loopback(host):
        return
    if "api.allowed_hosts" in settings.locked and host in settings.get("api.allowed_hosts"):
        return
    raise ApiServerError(
        f"The API server listens only on this computer (127.0.0.1). Listening on “{host}” "
        "would let other machines reach it; that needs your organisation's machine policy "
        "to list the address in api.allowed_hosts."
    )


class _HTTPServer(ThreadingHTTPServer):
    """Names its threads, caps connections, and can drop idle keep-alive connections."""

    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], api: ApiServer) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.api = api
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._open: dict[socket.socket, threading.Thread] = {}  # connection -> its thread
        self._open_lock = threading.Lock()
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN: a name lookup nobody asked for.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                    b"Connection: close\r\n\r\n"
                )
            self.shutdown_request(request)
            return
        thread = threading.Thread(
            target=self._serve,
            args=(request, client_address),
            name=f"hearth-api-connection-{client_address[1]}",
        )
        with self._open_lock:
            self._open[request] = thread
        thread.start()

    def _serve(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._open_lock:
                self._open.pop(request, None)
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The default prints a traceback to stderr. A client that left before the last
        # flush is ordinary; anything else is a bug worth the log.
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            log.debug("API connection from %s ended: %s", client_address[0], exc)
        else:
            log.exception("API connection from %s failed", client_address[0])

    def server_close(self) -> None:
        """Close the listening socket, then wait for every connection thread."""
        socketserver.TCPServer.server_close(self)
        with self._open_lock:
            threads = list(self._open.values())
        for thread in threads:
            thread.join()

    def drop_connections(self) -> None:
        with self._open_lock:
            for conn in list(self._open):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)


class ApiServer:
    """The API server. `start()` binds and serves on a background thread; `stop()` stops
    answering, cancels answers in flight and waits for the connection threads."""

    def __init__(
        self,
        backend: Backend,
        settings: Any,
        paths: DataPaths,
        *,
        host: str | None = None,
        port: int | None = None,
    ) -> None:
        self.backend = backend
        self.settings = settings
        self.paths = paths
        self.host = host if host is not None else str(settings.get("api.host"))
        self.port = int(settings.get("api.port")) if port is None else port
        self.audit = AuditLog(paths.logs)
        self.gate = Gate(int(settings.get("api.max_queue")))
        self.stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    def start(self) -> str:
        """Bind and serve; returns the base URL. Raises ApiServerError."""
        if self._httpd is not None:
            return self.url
        check_bind(self.host, self.settings)
        token.read_or_create(self.paths)  # so the settings page and clients can read it
        try:
            httpd = _HTTPServer((self.host, self.port), self)
        except OSError as exc:
            raise ApiServerError(
                f"The API server could not listen on {self.host} port "
                f"{self.port}: {exc.strerror or exc}. Is another program "
                "using the port?",
                str(exc),
            ) from None
        self.port = int(httpd.server_address[1])  # port 0 picks a free one
        self.stopping.clear()
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="hearth-api-listener"
        )
        self._thread.start()
        log.info("API server listening on %s", self.url)
        return self.url

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self.stopping.set()
        httpd.shutdown()
        httpd.drop_connections()
        httpd.server_close()  # joins the connection threads
        if self._thread is not None:
            self._thread.join()
        log.info("API server stopped")


def error_from(exc: BaseException) -> ApiError:
    """The API error for an engine error; the message is the engine's user message."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, errors.ModelNotFound):
        return ApiError(404, exc.user_message, param="model", code="model_not_found")
    if isinstance(exc, errors.CollectionNotFound):
        return ApiError(404, exc.user_message, code="not_found")
    if isinstance(exc, errors.InvalidModelFile):
        return ApiError(409, exc.user_message, param="model", code="model_unusable")
    if isinstance(exc, errors.ModelNotAllowed):
        return ApiError(403, exc.user_message, type="permission_error", code="model_not_allowed")
    if isinstance(exc, errors.PromptTooLong):
        return ApiError(400, exc.user_message, code="context_length_exceeded")
    if isinstance(exc, errors.SchemaRefused):
        return ApiError(400, exc.user_message, param="response_format", code="invalid_json_schema")
    if isinstance(exc, errors.EmbeddingInputTooLong):
        return ApiError(400, exc.user_message, param="input", code="input_too_long")
    if isinstance(exc, HearthError):
        return ApiError(500, exc.user_message, type="server_error", code=type(exc).__name__)
    log.exception("API request failed", exc_info=exc)
    return ApiError(
        500,
        "Hearth hit an internal error; the details are in its log.",
        type="server_error",
        code="internal_error",
    )


class Handler(BaseHTTPRequestHandler):
    """One connection; HTTP/1.1 with keep-alive. Runs on its own thread."""

    protocol_version = "HTTP/1.1"
    server_version = "Hearth"
    sys_version = ""
    timeout = READ_TIMEOUT_S
    # Stream chunks are small and go out every few tens of milliseconds: Nagle's algorithm
    # would hold one back until the client acknowledged the last.
    disable_nagle_algorithm = True
    # Buffered, so a response's last bytes leave in handle_one_request's flush, after
    # `_handle` has written the audit entry: a client holding a whole answer can count on
    # the entry being there, even if the app is killed the next moment.
    wbufsize = -1
    server: _HTTPServer

    # -- plumbing ------------------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the audit log records requests, without the query string or any content

    @property
    def api(self) -> ApiServer:
        return self.server.api

    def _handle(self) -> None:
        """Every method comes here; the router answers what it does not serve."""
        self._started = time.monotonic()
        self._entry: dict[str, Any] = {"authorized": False}
        self._body_read = False
        self._streaming = False  # response headers sent; an error can no longer be one
        status = 500
        try:
            status = self._route()
        except (BrokenPipeError, ConnectionResetError, TimeoutError, Cancelled):
            status = 499  # the client went away (nginx's code for it)
            self.close_connection = True
        except Exception as exc:
            err = error_from(exc)
            if self._streaming:
                self._entry["error"] = err.code
                self.close_connection = True
                status = err.status
            else:
                status = self._send_error(err)
        finally:
            path = self.path.split("?", 1)[0][:200]
            self.api.audit.write(
                Entry(
                    time=time.time(),
                    client=str(self.client_address[0]),
                    method=self.command,
                    path=path,
                    status=status,
                    duration_ms=int((time.monotonic() - self._started) * 1000),
                    **self._entry,
                )
            )

    do_GET = do_POST = do_OPTIONS = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

    def _route(self) -> int:
        origin = self.headers.get("Origin")
        self._check_host()
        self._check_origin(origin)
        path = self.path.split("?", 1)[0]
        if self.command == "OPTIONS":  # a CORS preflight from an allowed origin
            self.send_response(204)
            self._cors_headers()
            self.send_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
            self.send_header("Access-Control-Allow-Headers", "Authorization, Content-Type")
            self.send_header("Access-Control-Max-Age", "600")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return 204
        self._authorize()
        if self.command == "GET" and path == "/v1/models":
            return self._send_json(200, {"object": "list", "data": self.api.backend.models()})
        if self.command == "GET" and path.startswith("/v1/models/"):
            wanted = unquote(path[len("/v1/models/") :])
            for entry in self.api.backend.models():
                if entry["id"] == wanted:
                    return self._send_json(200, entry)
            raise ApiError(404, f"There is no model “{wanted}” here.", code="model_not_found")
        routes = {
            "/v1/chat/completions": self._chat,
            "/v1/completions": self._completion,
            "/v1/embeddings": self._embeddings,
        }
        if path in routes:
            if self.command != "POST":
                raise ApiError(405, f"{path} takes POST.", code="method_not_allowed")
            return routes[path](self._body())
        raise ApiError(404, f"There is no endpoint {self.command} {path}.", code="not_found")

    # -- checks --------------------------------------------------------------------------------

    def _check_host(self) -> None:
        if not is_loopback(self.api.host):
            return
        host = (self.headers.get("Host") or "").strip()
        name = host[1 : host.find("]")] if host.startswith("[") else host.rsplit(":", 1)[0]
        if name.lower() not in LOOPBACK_NAMES:
            raise ApiError(
                403,
                "This server answers only requests addressed to this "
                "computer (Host: localhost or 127.0.0.1).",
                type="permission_error",
                code="host_not_allowed",
            )

    def _check_origin(self, origin: str | None) -> None:
        if origin is None:
            return
        if origin not in self.api.settings.get("api.cors_origins"):
            raise ApiError(
                403,
                "Requests from web pages are refused: add the page's origin "
                "to api.cors_origins to allow it.",
                type="permission_error",
                code="origin_not_allowed",
            )

    def _cors_headers(self) -> None:
        origin = self.headers.get("Origin")
        if origin is not None and origin in self.api.settings.get("api.cors_origins"):
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Vary", "Origin")

    def _authorize(self) -> None:
        expected = token.read_or_create(self.api.paths)
        if not token.matches(expected, self.headers.get("Authorization")):
            raise ApiError(
                401,
                "A valid API token is required: send “Authorization: Bearer "
                "<token>”. Hearth's settings (or `hearth api token`) show it.",
                type="authentication_error",
                code="invalid_api_key",
            )
        self._entry["authorized"] = True

    def _body(self) -> Any:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise ApiError(
                411, "Send the body with a Content-Length, not chunked.", code="length_required"
            )
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.close_connection = True
            raise ApiError(
                411, "A Content-Length header is required.", code="length_required"
            ) from None
        limit = int(self.api.settings.get("api.max_request_mb")) * 1024 * 1024
        if length < 0 or length > limit:
            raise ApiError(
                413,
                f"The request is larger than this server takes "
                f"({limit // (1024 * 1024)} MB, setting api.max_request_mb).",
                code="request_too_large",
            )
        raw = self.rfile.read(length)
        self._body_read = True
        if len(raw) < length:
            raise ConnectionResetError("the client sent less than its Content-Length")
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than Python's
            raise ApiError(
                400, "The request body is not valid JSON.", code="invalid_json"
            ) from None

    def _discard_body(self) -> None:
        """Read and drop the body of a request refused before reading it: left unread it
        would be taken for the next request on the connection, and closing on a client still
        sending makes it see a reset instead of our answer. Past DRAIN_MAX, close anyway."""
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if self.headers.get("Transfer-Encoding") or not 0 <= length <= DRAIN_MAX:
            self.close_connection = True
            return
        try:
            while length > 0:
                got = self.rfile.read(min(length, 1 << 20))
                if not got:
                    break
                length -= len(got)
        except OSError:
            pass
        self._body_read = True
        if length > 0:
            self.close_connection = True

    def _client_gone(self) -> bool:
        """Whether the client closed its connection (or the server is stopping)."""
        if self.api.stopping.is_set():
            return True
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    # -- endpoints -------------------------------------------------------------------------------

    def _embeddings(self, body: Any) -> int:
        call = protocol.parse_embeddings(body)
        self._entry["model"] = call.model
        result = self.api.backend.embed(call)
        self._entry["prompt_tokens"] = result["usage"]["prompt_tokens"]
        return self._send_json(200, result)

    def _chat(self, body: Any) -> int:
        call = protocol.parse_chat(body)
        self._entry.update(model=call.model, stream=call.stream)
        return self._answer(
            self.api.backend.prepare_chat(call), call.stream, call.include_usage, chat=True
        )

    def _completion(self, body: Any) -> int:
        call = protocol.parse_completion(body)
        self._entry.update(model=call.model, stream=call.stream)
        return self._answer(
            self.api.backend.prepare_completion(call), call.stream, call.include_usage, chat=False
        )

    def _answer(self, job: Job, stream: bool, include_usage: bool, *, chat: bool) -> int:
        rid = protocol.new_id("chatcmpl" if chat else "cmpl")
        created = protocol.now()
        answer = protocol.Answer()
        # Closing the events stops the answer if it is still running (the client left).
        with self.api.gate.turn(self._client_gone), contextlib.closing(job.run()) as events:
            try:
                if stream:
                    return self._stream(
                        events, job.model, rid, created, answer, include_usage, chat
                    )
                for event in events:
                    _collect(answer, event)
                    if self._client_gone():
                        raise Cancelled()
            finally:
                self._count(answer)
        body = (protocol.chat_response if chat else protocol.completion_response)(
            rid, created, job.model, answer
        )
        return self._send_json(200, body)

    def _stream(
        self,
        events: Iterator[Any],
        model: str,
        rid: str,
        created: int,
        answer: protocol.Answer,
        include_usage: bool,
        chat: bool,
    ) -> int:
        """Server-sent events, with chunked transfer encoding so the connection stays
        usable. The headers go out with the first event, so an error before it (an unknown
        collection, a model that will not load) is still an ordinary error response; one
        after it goes out as an error event, as OpenAI's does."""

        def start() -> None:
            self._streaming = True
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self._cors_headers()
            self.end_headers()
            if chat:
                self._event(
                    protocol.chat_chunk(rid, created, model, {"role": "assistant", "content": ""})
                )

        try:
            for event in events:
                if not self._streaming:
                    start()
                if self.api.stopping.is_set():
                    raise Cancelled()
                _collect(answer, event)
                if isinstance(event, Retrieved | NothingRelevant) and chat:
                    self._event(
                        protocol.chat_chunk(
                            rid,
                            created,
                            model,
                            {},
                            sources=answer.sources,
                            source_notes=answer.source_notes or [],
                        )
                    )
                if isinstance(event, Grounded) and chat:
                    self._event(
                        protocol.chat_chunk(rid, created, model, {}, grounding=answer.grounding)
                    )
                if isinstance(event, Recorded) and chat:
                    self._event(protocol.chat_chunk(rid, created, model, {}, record=answer.record))
                if isinstance(event, NothingRelevant):
                    self._piece(rid, created, model, event.message, chat)
                elif isinstance(event, TextPiece):
                    self._piece(rid, created, model, event.text, chat)
            if not self._streaming:
                start()
            finish = protocol.finish_reason(answer.stats)
            if chat:
                self._event(protocol.chat_chunk(rid, created, model, {}, finish))
            else:
                self._event(protocol.completion_chunk(rid, created, model, "", finish))
            if include_usage:
                self._event(
                    protocol.usage_chunk(
                        rid,
                        created,
                        model,
                        "chat.completion.chunk" if chat else "text_completion",
                        answer.stats,
                    )
                )
        except (ApiError, HearthError) as exc:
            if not self._streaming:
                raise
            err = error_from(exc)
            self._event(err.body())
            self._entry["error"] = err.code
        # not flushed: these go out after the audit entry is written (see wbufsize)
        self._chunk(b"data: [DONE]\n\n", flush=False)
        self._chunk(b"", flush=False)
        return 200

    def _piece(self, rid: str, created: int, model: str, text: str, chat: bool) -> None:
        if chat:
            self._event(protocol.chat_chunk(rid, created, model, {"content": text}))
        else:
            self._event(protocol.completion_chunk(rid, created, model, text))

    def _event(self, obj: dict[str, Any]) -> None:
        self._chunk(b"data: " + json.dumps(obj, ensure_ascii=False).encode("utf-8") + b"\n\n")

    def _chunk(self, data: bytes, flush: bool = True) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode("ascii") + data + b"\r\n")
        if flush:
            self.wfile.flush()

    def _count(self, answer: protocol.Answer) -> None:
        if answer.stats is not None:
            self._entry.update(
                prompt_tokens=answer.stats.prompt_tokens,
                completion_tokens=answer.stats.generated_tokens,
            )

    # -- responses -------------------------------------------------------------------------------

    def _send_json(self, status: int, obj: Any) -> int:
        data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self._cors_headers()
        if status == 401:
            self.send_header("WWW-Authenticate", 'Bearer realm="hearth"')
        if status == 503:
            self.send_header("Retry-After", "2")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        return status

    def _send_error(self, err: ApiError) -> int:
        self._entry["error"] = err.code or err.type
        if not self._body_read:
            self._discard_body()
        try:
            return self._send_json(err.status, err.body())
        except OSError:
            self.close_connection = True
            return err.status


def _collect(answer: protocol.Answer, event: Any) -> None:
    match event:
        case Retrieved():
            answer.sources = [s.as_dict() for s in event.sources]
            answer.source_notes = list(event.notes)
        case Grounded():
            answer.grounding = event.grounding.as_dict()
        case Recorded():
            answer.record = event.record
        case NothingRelevant():
            answer.sources, answer.source_notes = [], []
            answer.text += event.message
        case TextPiece():
            answer.text += event.text
        case Notice():
            answer.notices = [*(answer.notices or []), event.message]
        case Done():
            answer.stats = event.stats
