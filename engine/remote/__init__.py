"""Models on servers the user or IT configured, beside local GGUF files.

A model on a server has the id ``remote:<host:port>/<model>`` (the model part as the server
names it, slashes and all), so the window, the CLI and the API name it the way they name a
local model, and `engine.models.load_params` turns it into LoadParams whose `server` is the
server's URL. `ModelRuntime` streams such a model through `RemoteModels` instead of its worker.

What each server offers is asked on request (`refresh`: adding a server, the Refresh button,
`hearth remote refresh`) and kept in ``cache/remote-models.json``, so listing models never
touches the network; the cache is rebuilt from the servers at will.

| module          | owns                                                                  |
|-----------------|-----------------------------------------------------------------------|
| `servers`       | URLs, the policy check, TLS, tokens in the keyring, the network guard  |
| `openai_server` | the OpenAI-compatible protocol: model lists and streamed answers       |
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import files
from engine.errors import ModelNotFound, ServerError
from engine.paths import DataPaths
from engine.remote import servers
from engine.remote.servers import Server
from engine.runtime.events import Event
from engine.runtime.params import ChatRequest, LoadParams
from engine.settings import Settings

if TYPE_CHECKING:  # httpx is imported on first use, off the start-up path
    from engine.remote.openai_server import ModelServer

log = logging.getLogger(__name__)

PREFIX = "remote:"
CACHE_NAME = "remote-models.json"

__all__ = [
    "PREFIX",
    "RemoteModel",
    "RemoteModels",
    "Server",
    "ServerStatus",
    "cached",
    "is_remote",
    "model_id",
    "refresh",
    "servers",
    "split_id",
    "usable",
]


@dataclass(frozen=True)
class RemoteModel:
    """A model a configured server offers, as last asked."""

    id: str  # remote:<host:port>/<model>
    server: Server
    model: str  # the server's own name for it
    context_length: int | None

    @property
    def name(self) -> str:
        return f"{self.model} on {self.server.key}"


@dataclass(frozen=True)
class ServerStatus:
    server: Server
    models: tuple[RemoteModel, ...]
    problem: str | None  # why the last refresh failed
    checked: float  # time.time() of that refresh; 0 for never


def is_remote(model: str) -> bool:
    return model.startswith(PREFIX)


def model_id(server: Server, model: str) -> str:
    return f"{PREFIX}{server.key}/{model}"


def split_id(model: str) -> tuple[str, str]:
    """ "remote:host:port/name" -> ("host:port", "name"). Raises ModelNotFound if malformed."""
    rest = model[len(PREFIX) :] if is_remote(model) else ""
    key, _, name = rest.partition("/")
    if not key or not name:
        raise ModelNotFound(f"“{model}” is not a server model id (remote:host:port/model).")
    return key, name


def _cache_file(paths: DataPaths) -> Path:
    return paths.cache / CACHE_NAME


def _read_cache(paths: DataPaths) -> dict[str, Any]:
    try:
        doc = json.loads(_cache_file(paths).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def cached(settings: Settings, paths: DataPaths) -> list[ServerStatus]:
    """Each configured model server with the models it offered at its last refresh."""
    doc = _read_cache(paths)
    out = []
    for server in servers.configured(settings):
        entry = doc.get(server.url) if isinstance(doc.get(server.url), dict) else {}
        models = []
        for item in entry.get("models", []) if isinstance(entry, dict) else []:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                ctx = item.get("context_length")
                models.append(
                    RemoteModel(
                        model_id(server, item["id"]),
                        server,
                        item["id"],
                        ctx if isinstance(ctx, int) else None,
                    )
                )
        out.append(
            ServerStatus(
                server,
                tuple(models),
                entry.get("problem") if isinstance(entry, dict) else None,
                float(entry.get("checked", 0.0)) if isinstance(entry, dict) else 0.0,
            )
        )
    return out


def usable(settings: Settings, paths: DataPaths) -> list[tuple[RemoteModel, float]]:
    """The server models that may be used now (servers the settings and policy allow), as
    last asked, each with when its server was asked: what pickers and /v1/models list."""
    return [
        (model, status.checked)
        for status in cached(settings, paths)
        if servers.refusal(settings, status.server) is None
        for model in status.models
    ]


def refresh(settings: Settings, paths: DataPaths) -> list[ServerStatus]:
    """Ask every configured model server what it offers (one request each), keep the answers
    in the cache, and return them. A server that fails keeps its last list, with the problem."""
    from engine.remote.openai_server import ModelServer

    doc = _read_cache(paths)
    kept: dict[str, Any] = {}
    for server in servers.configured(settings):
        entry = dict(doc.get(server.url) or {})
        try:
            infos = ModelServer(settings, server).models()
        except ServerError as exc:
            entry["problem"] = exc.user_message
            log.warning("server %s: %s (%s)", server.key, exc.user_message, exc.detail)
        else:
            entry = {
                "models": [{"id": i.id, "context_length": i.context_length} for i in infos],
                "problem": None,
            }
        entry["checked"] = time.time()
        kept[server.url] = entry
    _cache_file(paths).parent.mkdir(parents=True, exist_ok=True)
    files.write_atomic(_cache_file(paths), json.dumps(kept, indent=1))
    return cached(settings, paths)


def find(settings: Settings, paths: DataPaths, model: str) -> RemoteModel:
    """The configured server model `model` (remote:…). Raises ModelNotFound, or
    ServerNotAllowed when settings or policy forbid that server now."""
    key, name = split_id(model)
    server = servers.find(settings, key)
    if server is None:
        raise ModelNotFound(
            f"“{model}” is on {key}, which is not one of the configured model servers."
        )
    servers.check(settings, server)
    for status in cached(settings, paths):
        for found in status.models:
            if found.id == model:
                return found
    # Not in the last list: the server may have it now; loading asks it.
    return RemoteModel(model, server, name, None)


def load_params(settings: Settings, paths: DataPaths, model: str) -> LoadParams:
    found = find(settings, paths, model)
    context = int(settings.get("inference.context_length"))
    if found.context_length:
        context = min(context, found.context_length) if context else found.context_length
    return LoadParams(model_path=found.id, context_length=context, server=found.server.url)


class RemoteModels:
    """What `ModelRuntime` uses for a LoadParams with a `server`: checks it may be used,
    asks the server about the model, streams answers, and stops them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _model_server(self, params: LoadParams) -> tuple[ModelServer, str]:
        from engine.remote.openai_server import ModelServer

        _, name = split_id(params.model_path)
        server = servers.parse(params.server)
        servers.check(self.settings, server)
        return ModelServer(self.settings, server), name

    def load(self, params: LoadParams) -> tuple[dict[str, Any], dict[str, Any]]:
        """(file summary, runtime facts) for LoadedModel, after asking the server that it is
        reachable, takes the token and offers the model. Raises ServerError."""
        client, name = self._model_server(params)
        offered = client.models()
        match = next((m for m in offered if m.id == name), None)
        if match is None:
            names = ", ".join(m.id for m in offered[:8]) or "none"
            raise ModelNotFound(
                f"The model server {client.server.key} does not offer “{name}” "
                f"(it offers: {names})."
            )
        summary = {"name": name, "server": client.server.key, "remote": True}
        facts = {
            "n_ctx": params.context_length,
            "server": client.server.url,
            "server_context_length": match.context_length,
        }
        return summary, facts

    def stream(
        self, params: LoadParams, request: ChatRequest, stop: threading.Event
    ) -> Generator[Event, None, None]:
        client, name = self._model_server(params)
        yield from client.stream(name, request, stop)

    def estimate_tokens(self, request: ChatRequest) -> int:
        """Prompt tokens, estimated: the server's tokenizer is not here."""
        return request.estimated_tokens()
