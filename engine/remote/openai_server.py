"""Answers from an OpenAI-compatible server: llama.cpp's server, vLLM, Ollama, LM Studio's
server, or another Hearth's API.

`ModelServer(settings, server).stream(model, request, stop)` yields the same events as the
local runtime (TextPiece ..., then one Done) and ends every failure with a `ServerError` whose
message says what happened: unreachable, refused token (401/403), busy (429), no such model,
too slow (no byte for `remote.timeout_s`), or the connection dropped mid-answer (what arrived
was already yielded, so the caller keeps it).

The HTTP exchange runs on a reader thread that feeds a queue; the generator polls that queue
and a stop event. A stop therefore ends the turn at once, whatever the server is doing, and a
server that goes silent cannot hang the turn: the read timeout ends the reader, and the reader
always puts its end on the queue.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from engine.errors import (
    GenerationError,
    NetworkBlocked,
    SchemaRefused,
    ServerAuthFailed,
    ServerError,
    ServerNotAllowed,
)
from engine.remote import servers
from engine.remote.servers import Server
from engine.runtime.events import Done, Event, GenerationStats, TextPiece
from engine.runtime.params import ChatRequest
from engine.settings import Settings

log = logging.getLogger(__name__)

_POLL_S = 0.05


@dataclass(frozen=True)
class RemoteModelInfo:
    id: str
    context_length: int | None  # when the server says (vLLM's max_model_len, llama.cpp's n_ctx)
    owned_by: str


class ModelServer:
    """One configured OpenAI-compatible server, used under the settings in force at each call."""

    def __init__(self, settings: Settings, server: Server) -> None:
        self.settings = settings
        self.server = server

    @property
    def base(self) -> str:
        """The API root: the URL as configured, with /v1 added when it has no path."""
        url = self.server.url
        rest = url.split("://", 1)[1]
        return url if "/" in rest else f"{url}/v1"

    def _client(self, read_timeout: float | None = None) -> httpx.Client:
        wait = float(self.settings.get("remote.timeout_s"))
        return httpx.Client(
            verify=servers.ssl_context(self.settings) if self.server.tls else True,
            timeout=httpx.Timeout(read_timeout or wait, connect=min(wait, 15.0)),
            headers=servers.headers(self.server),
            trust_env=False,  # no proxy or netrc the user did not give Hearth
            follow_redirects=False,  # a redirect could lead to a host nobody allowed
        )

    def models(self) -> list[RemoteModelInfo]:
        """The models the server offers (GET /models). Raises ServerError."""
        with servers.connection(self.settings, self.server), _mapped(self.server):
            with self._client() as client:
                response = client.get(f"{self.base}/models")
            _raise_for_status(self.server, response, model=None)
            try:
                data = response.json().get("data", [])
            except (ValueError, AttributeError):
                raise ServerError(
                    f"{self.server.key} answered /models with something that is not an "
                    "OpenAI-compatible model list. Is the address the API's root (…/v1)?"
                ) from None
        out = []
        for item in data if isinstance(data, list) else []:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                ctx = item.get("max_model_len") or item.get("context_length")
                meta = item.get("meta")
                if not ctx and isinstance(meta, dict):  # llama.cpp's own server
                    ctx = meta.get("n_ctx_train")
                out.append(
                    RemoteModelInfo(
                        item["id"],
                        int(ctx) if isinstance(ctx, int) else None,
                        str(item.get("owned_by") or ""),
                    )
                )
        return out

    def stream(
        self, model: str, request: ChatRequest, stop: threading.Event
    ) -> Generator[Event, None, None]:
        """TextPiece events, then one Done; a ServerError when the server fails."""
        t0 = time.perf_counter()
        body, path = _body(model, request)
        items: queue.Queue[tuple[str, Any]] = queue.Queue()
        abandon = threading.Event()
        held: list[httpx.Response] = []  # the open response, for an abandon to cut
        reader = threading.Thread(
            target=self._read,
            args=(path, body, items, abandon, model, held),
            daemon=True,
            name=f"hearth-remote-{self.server.key}",
        )
        reader.start()
        t_first: float | None = None
        pieces = 0
        usage: dict[str, Any] = {}
        finish = "eos"
        text: list[str] = []  # kept only to check a JSON schema answer at its end
        try:
            while True:
                if stop.is_set():
                    yield Done(_stats(t0, t_first, pieces, usage, "cancelled"))
                    return
                try:
                    kind, value = items.get(timeout=_POLL_S)
                except queue.Empty:
                    continue
                if kind == "piece":
                    pieces += 1
                    if request.sampling.json_schema is not None:
                        text.append(value)
                    t_first = t_first or time.perf_counter()
                    yield TextPiece(value)
                elif kind == "usage":
                    usage = value
                elif kind == "finish":
                    finish = value
                elif kind == "error":
                    raise value
                elif kind == "end":
                    if request.sampling.json_schema is not None and finish != "length":
                        _check_schema(self.server, "".join(text), request.sampling.json_schema)
                    yield Done(_stats(t0, t_first, pieces, usage, finish))
                    return
        finally:
            abandon.set()
            if reader.is_alive():
                _cut(held)  # wakes a reader blocked on a silent server
                reader.join(2.0)

    def _read(
        self,
        path: str,
        body: dict[str, Any],
        items: queue.Queue[tuple[str, Any]],
        abandon: threading.Event,
        model: str,
        held: list[httpx.Response],
    ) -> None:
        """The reader thread: the request, each streamed chunk onto `items`, then ("end", None)
        or ("error", ServerError). Always puts exactly one of those two last."""
        got: list[bool] = []  # whether any text arrived, for the wording of a drop
        try:
            with (
                servers.connection(self.settings, self.server),
                _mapped(self.server, streaming=True),
                self._client() as client,
            ):
                for attempt in _forms(body):
                    if self._exchange(client, path, attempt, items, abandon, model, held, got):
                        break
            items.put(("end", None))
        except ServerError as exc:
            items.put(("error", exc))
        except httpx.HTTPError as exc:
            if abandon.is_set():
                return  # cut on purpose: nobody reads the queue any more
            items.put(("error", _dropped(self.server, exc, bool(got), self.settings)))
        except Exception as exc:  # the reader must always end the turn, whatever broke
            log.exception("remote stream from %s failed", self.server.key)
            items.put(
                ("error", ServerError(f"The model server {self.server.key} failed.", repr(exc)))
            )

    def _exchange(
        self,
        client: httpx.Client,
        path: str,
        body: dict[str, Any],
        items: queue.Queue[tuple[str, Any]],
        abandon: threading.Event,
        model: str,
        held: list[httpx.Response],
        got: list[bool],
    ) -> bool:
        """One streamed request. False when the server refused the form of a JSON schema
        request (so the next form may be tried); True when the answer was read."""
        with client.stream("POST", f"{self.base}{path}", json=body) as response:
            held.append(response)
            if response.status_code >= 400:
                response.read()
                # llama-cpp-python's server answers its own validation errors with a 500
                if response.status_code in (400, 422, 500) and _refused_format(response, body):
                    return False
                _raise_for_status(self.server, response, model=model)
            for data in _sse_data(response.iter_lines()):
                if abandon.is_set():
                    return True
                if data == "[DONE]":
                    break
                chunk = _json(data)
                if chunk is None:
                    continue
                if isinstance(chunk.get("error"), dict | str):
                    raise ServerError(
                        f"The model server {self.server.key} stopped with an error: "
                        f"{_error_text(chunk['error'])}"
                    )
                if isinstance(chunk.get("usage"), dict):
                    items.put(("usage", chunk["usage"]))
                for choice in chunk.get("choices") or []:
                    text = _choice_text(choice)
                    if text:
                        got.append(True)
                        items.put(("piece", text))
                    reason = choice.get("finish_reason")
                    if reason:
                        items.put(("finish", _finish(reason)))
        return True


def _forms(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The request as sent, then, for a JSON schema, the same in llama.cpp servers' older form
    (`json_object` with a `schema`), for a server that refuses OpenAI's `json_schema` form."""
    fmt = body.get("response_format")
    if not fmt or fmt.get("type") != "json_schema":
        return [body]
    schema = fmt["json_schema"]["schema"]
    return [body, {**body, "response_format": {"type": "json_object", "schema": schema}}]


def _refused_format(response: httpx.Response, body: dict[str, Any]) -> bool:
    fmt = body.get("response_format")
    said = json.dumps(_response_error(response)).lower()
    return isinstance(fmt, dict) and fmt.get("type") == "json_schema" and "response_format" in said


def _check_schema(server: Server, text: str, schema: str) -> None:
    """A server's grammar is its own: the answer is held to the schema here, once whole."""
    import jsonschema

    try:
        jsonschema.validate(json.loads(text), json.loads(schema))
    except (ValueError, jsonschema.ValidationError) as exc:
        raise ServerError(
            f"The model server {server.key} answered with JSON that does not match the schema "
            "(it may not support JSON schemas).",
            str(exc)[:300],
        ) from None


def _cut(held: list[httpx.Response]) -> None:
    """Shut the socket of an open response down: a read blocked on it returns at once (closing
    alone would not wake it)."""
    import socket

    for response in held:
        stream = response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _body(model: str, request: ChatRequest) -> tuple[dict[str, Any], str]:
    s = request.sampling
    body: dict[str, Any] = {
        "model": model,
        "stream": True,
        "temperature": s.temperature,
        "top_p": s.top_p,
        "max_tokens": s.max_tokens,
        "frequency_penalty": s.frequency_penalty,
        "presence_penalty": s.presence_penalty,
        # Not in OpenAI's own API, understood by llama.cpp's, vLLM's and Ollama's servers and
        # ignored by the others: the same sampling the local model would use.
        "top_k": s.top_k,
        "min_p": s.min_p,
        "repeat_penalty": s.repeat_penalty,
    }
    if s.stop:
        body["stop"] = list(s.stop)[:4]  # OpenAI's limit
    if s.seed >= 0:
        body["seed"] = s.seed
    if s.json_schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": json.loads(s.json_schema), "strict": True},
        }
    if request.raw_prompt is not None:
        body["prompt"] = request.raw_prompt
        return body, "/completions"
    body["messages"] = request.template_messages()
    return body, "/chat/completions"


def _sse_data(lines: Iterator[str]) -> Iterator[str]:
    """The data of each server-sent event (multi-line data joined), in order."""
    buffer: list[str] = []
    for line in lines:
        if not line:
            if buffer:
                yield "\n".join(buffer)
                buffer = []
            continue
        if line.startswith("data:"):
            buffer.append(line[5:].removeprefix(" "))
        elif line.startswith("{"):  # a server that streams bare JSON lines
            yield line
    if buffer:
        yield "\n".join(buffer)


def _json(data: str) -> dict[str, Any] | None:
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _choice_text(choice: Any) -> str:
    if not isinstance(choice, dict):
        return ""
    delta = choice.get("delta")
    if isinstance(delta, dict) and isinstance(delta.get("content"), str):
        return str(delta["content"])
    return str(choice.get("text") or "")


def _finish(reason: str) -> str:
    return {"stop": "eos", "length": "length"}.get(reason, "eos")


def _stats(
    t0: float, t_first: float | None, pieces: int, usage: dict[str, Any], reason: str
) -> GenerationStats:
    now = time.perf_counter()
    generated = int(usage.get("completion_tokens") or pieces)
    decode_s = now - t_first if t_first is not None else 0.0
    return GenerationStats(
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        cached_tokens=0,
        generated_tokens=generated,
        time_to_first_token_s=(t_first - t0) if t_first is not None else 0.0,
        prefill_tokens_per_s=0.0,  # the server's business; it does not say
        tokens_per_s=(generated - 1) / decode_s if generated > 1 and decode_s > 0 else 0.0,
        total_s=now - t0,
        stop_reason=reason,  # type: ignore[arg-type]
    )


class _mapped:
    """Turns the HTTP client's exceptions into ServerErrors that say what to do."""

    def __init__(self, server: Server, streaming: bool = False) -> None:
        self.server = server
        self.streaming = streaming  # read-side errors are the stream's to word

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        if exc is None or isinstance(exc, GenerationError):
            return
        if self.streaming and isinstance(
            exc, httpx.ReadError | httpx.ReadTimeout | httpx.RemoteProtocolError
        ):
            return
        key = self.server.key
        blocked = _cause(exc, NetworkBlocked)
        if blocked is not None:
            raise ServerNotAllowed(
                f"Hearth's network guard refused the connection to {key}: {blocked}"
            ) from None
        if isinstance(exc, httpx.ConnectTimeout):
            raise ServerError(f"The model server {key} did not answer the connection in time.")
        if isinstance(exc, httpx.ConnectError):
            import ssl

            if _cause(exc, ssl.SSLCertVerificationError) is not None or "CERTIFICATE" in str(exc):
                raise ServerError(
                    f"The certificate of {key} could not be verified, so Hearth did not send "
                    "anything. If your organisation uses its own certificate authority, set "
                    "its file in remote.ca_bundle.",
                    str(exc),
                ) from None
            raise ServerError(
                f"Hearth could not reach the model server {key}. Is it running, and is the "
                "address right?",
                str(exc),
            ) from None
        if isinstance(exc, httpx.TimeoutException):
            raise ServerError(f"The model server {key} took too long to answer.", str(exc))
        if isinstance(exc, httpx.HTTPError):
            raise ServerError(f"The connection to the model server {key} failed.", str(exc))


def _cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 10:
        if isinstance(current, kind):
            return current
        current = current.__cause__ or current.__context__
        seen += 1
    return None


def _dropped(server: Server, exc: Exception, got_any: bool, settings: Settings) -> ServerError:
    if isinstance(exc, httpx.ReadTimeout):
        wait = float(settings.get("remote.timeout_s"))
        return ServerError(
            f"The model server {server.key} sent nothing for {wait:.0f} s, so the turn was "
            "ended" + (" (what arrived before is kept)." if got_any else "."),
            str(exc),
        )
    return ServerError(
        f"The connection to the model server {server.key} dropped "
        + (
            "in the middle of the answer; what arrived is kept."
            if got_any
            else "before it answered."
        ),
        repr(exc),
    )


def _raise_for_status(server: Server, response: httpx.Response, model: str | None) -> None:
    code = response.status_code
    if code < 400:
        return
    said = _error_text(_response_error(response))
    key = server.key
    if code in (401, 403):
        raise ServerAuthFailed(
            f"The model server {key} refused Hearth's token (HTTP {code}). Set the right "
            "token for it (Settings → Servers, or `hearth remote token`).",
            said,
        )
    if code == 429:
        after = response.headers.get("retry-after")
        raise ServerError(
            f"The model server {key} is busy (HTTP 429, too many requests)"
            + (f"; it asks to try again in {after} s." if after else "; try again shortly."),
            said,
        )
    if code == 404 and model is not None:
        raise ServerError(
            f"The model server {key} has no model “{model}” (HTTP 404). Refresh the server's "
            "models to see what it offers.",
            said,
        )
    if code == 400 and "json" in said.lower() and "schema" in said.lower():
        raise SchemaRefused(f"The model server {key} cannot follow this JSON schema: {said}")
    raise ServerError(f"The model server {key} answered HTTP {code}: {said}"[:600], said)


def _response_error(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        return body.get("error") or body.get("detail") or body.get("message") or body
    return body


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error.get("detail") or json.dumps(error))[:300]
    return str(error)[:300]
