"""OpenAI's wire format, both ways: request bodies into checked calls, engine results into
response objects and stream chunks.

Strict where leniency would mislead: a parameter Hearth cannot honour (tools, several choices,
log-probabilities, token arrays) is refused with a 400 that names it, rather than
quietly ignored; unknown parameters are ignored, as other local servers do. Hearth's additions
ride along as extra fields (`sources`, `source_notes`, `grounding`, `record`, `notices`) that
OpenAI clients keep.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.errors import SchemaRefused
from engine.runtime import json_grammar
from engine.runtime.events import GenerationStats
from engine.runtime.params import ChatMessage

COLLECTION_PREFIX = "docs/"  # model "docs/Contracts": answer from the collection "Contracts"
MAX_STOP_STRINGS = 16
MAX_EMBEDDING_INPUTS = 2048
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


class ApiError(Exception):
    """An error response: HTTP status plus OpenAI's error object."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def bad(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


# -- requests ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatCall:
    model: str
    messages: tuple[ChatMessage, ...]
    sampling: dict[str, Any]  # SamplingParams fields the request set
    stream: bool = False
    include_usage: bool = False
    collections: tuple[str, ...] = ()  # from the model alias and the `collections` extension
    documents_only: bool = False


@dataclass(frozen=True)
class CompletionCall:
    model: str
    prompt: str
    sampling: dict[str, Any]
    stream: bool = False
    include_usage: bool = False


@dataclass(frozen=True)
class EmbeddingCall:
    model: str
    inputs: tuple[str, ...]
    encoding: str  # "float" or "base64"


def parse_chat(body: Any) -> ChatCall:
    body = _object(body)
    model = _model(body)
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise bad("“messages” must be a non-empty list.", "messages")
    messages = tuple(_message(m, i) for i, m in enumerate(raw))
    _refuse_unsupported(body, chat=True)
    collections = list(_strings(body.get("collections", []), "collections"))
    if model.startswith(COLLECTION_PREFIX):
        name = model[len(COLLECTION_PREFIX) :]
        if not name:
            raise bad("Name a collection after “docs/”.", "model")
        collections.insert(0, name)
    documents_only = body.get("documents_only", False)
    if not isinstance(documents_only, bool):
        raise bad("“documents_only” must be true or false.", "documents_only")
    if collections and messages[-1].role != "user":
        raise bad("A question to a collection must end with a user message.", "messages")
    sampling = _sampling(body)
    if documents_only and "json_schema" in sampling:
        raise bad(
            "“documents_only” answers with a sentence when nothing relevant is found, "
            "which no JSON schema matches; leave one of them out.",
            "response_format",
        )
    return ChatCall(
        model, messages, sampling, *_stream(body), tuple(dict.fromkeys(collections)), documents_only
    )


def parse_completion(body: Any) -> CompletionCall:
    body = _object(body)
    model = _model(body)
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise bad(
            "“prompt” must be one string; token arrays and several prompts in one "
            "request are not supported.",
            "prompt",
        )
    if model.startswith(COLLECTION_PREFIX):
        raise bad("Collections answer questions through /v1/chat/completions.", "model")
    _refuse_unsupported(body, chat=False)
    return CompletionCall(model, prompt, _sampling(body), *_stream(body))


def parse_embeddings(body: Any) -> EmbeddingCall:
    body = _object(body)
    model = _model(body)
    raw = body.get("input")
    inputs = [raw] if isinstance(raw, str) else raw
    if not isinstance(inputs, list) or not inputs or not all(isinstance(t, str) for t in inputs):
        raise bad(
            "“input” must be a string or a non-empty list of strings; token arrays are "
            "not supported.",
            "input",
        )
    if len(inputs) > MAX_EMBEDDING_INPUTS:
        raise bad(f"At most {MAX_EMBEDDING_INPUTS} inputs per request.", "input")
    if any(not t for t in inputs):
        raise bad("An input is empty.", "input")
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise bad("“encoding_format” must be “float” or “base64”.", "encoding_format")
    return EmbeddingCall(model, tuple(inputs), encoding)


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad("The request body must be a JSON object.")
    return body


def _model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise bad("“model” is required: GET /v1/models lists what this server offers.", "model")
    return model.strip()


def _message(m: Any, i: int) -> ChatMessage:
    param = f"messages[{i}]"
    if not isinstance(m, dict):
        raise bad("Each message must be an object with “role” and “content”.", param)
    role = m.get("role")
    if role in ("tool", "function") or m.get("tool_calls"):
        raise bad("Hearth's API does not call tools, so it takes no tool messages.", param)
    if role not in ROLES:
        raise bad(f"Unknown role {role!r}: use system, user or assistant.", f"{param}.role")
    content = m.get("content")
    if content is None and role == "assistant":
        content = ""
    if isinstance(content, list):  # content parts: text only
        texts = []
        for part in content:
            if (
                not isinstance(part, dict)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                raise bad(
                    "Only text content parts are supported (no images, audio or files).",
                    f"{param}.content",
                )
            texts.append(part["text"])
        content = "\n".join(texts)
    if not isinstance(content, str):
        raise bad("“content” must be a string or a list of text parts.", f"{param}.content")
    return ChatMessage(ROLES[role], content)


def _refuse_unsupported(body: dict[str, Any], *, chat: bool) -> None:
    n = body.get("n", 1)
    if n != 1:
        raise bad("Only one choice per request (n = 1).", "n")
    if body.get("logprobs") or body.get("top_logprobs"):
        raise bad("Log-probabilities are not supported.", "logprobs")
    if body.get("logit_bias"):
        raise bad("“logit_bias” is not supported.", "logit_bias")
    if chat:
        if (
            body.get("tools")
            or body.get("functions")
            or body.get("tool_choice") not in (None, "none")
        ):
            raise bad("Hearth's API does not call tools or functions.", "tools")
    else:
        if body.get("echo"):
            raise bad("“echo” is not supported.", "echo")
        if body.get("suffix"):
            raise bad("“suffix” (fill-in-the-middle) is not supported.", "suffix")
        if body.get("best_of", 1) != 1:
            raise bad("“best_of” must be 1.", "best_of")


# (request name, SamplingParams field, type, minimum, maximum)
_NUMBERS: tuple[tuple[str, str, type, float, float], ...] = (
    ("temperature", "temperature", float, 0.0, 2.0),
    ("top_p", "top_p", float, 0.0, 1.0),
    ("frequency_penalty", "frequency_penalty", float, -2.0, 2.0),
    ("presence_penalty", "presence_penalty", float, -2.0, 2.0),
    ("max_tokens", "max_tokens", int, 1, 1_048_576),
    ("max_completion_tokens", "max_tokens", int, 1, 1_048_576),
    # llama.cpp's own knobs, as llama.cpp's server takes them
    ("top_k", "top_k", int, 0, 100_000),
    ("min_p", "min_p", float, 0.0, 1.0),
    ("repeat_penalty", "repeat_penalty", float, 0.0, 5.0),
)


def _sampling(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, field_name, kind, low, high in _NUMBERS:
        value = body.get(name)
        if value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or (kind is int and not isinstance(value, int))
        ):
            raise bad(f"“{name}” must be {'an integer' if kind is int else 'a number'}.", name)
        if not low <= value <= high:
            raise bad(f"“{name}” must be between {low:g} and {high:g}.", name)
        out[field_name] = kind(value)
    seed = body.get("seed")
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise bad("“seed” must be an integer.", "seed")
        out["seed"] = seed % 2**32 if seed >= 0 else -1
    schema = _json_schema(body)
    if schema is not None:
        out["json_schema"] = schema
    stop = body.get("stop")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        out["stop"] = _strings(stops, "stop")
        if len(out["stop"]) > MAX_STOP_STRINGS or not all(out["stop"]):
            raise bad(f"“stop” takes up to {MAX_STOP_STRINGS} non-empty strings.", "stop")
    return out


def _json_schema(body: dict[str, Any]) -> str | None:
    """The JSON Schema the answer must match, as JSON text, from OpenAI's `response_format`
    (json_object or json_schema) or llama.cpp server's `json_schema` extension."""
    fmt = body.get("response_format")
    schema: Any = None
    param = "response_format"
    if fmt is not None:
        kind = fmt.get("type") if isinstance(fmt, dict) else None
        if kind == "json_object":
            schema = {"type": "object"}  # any object
        elif kind == "json_schema":
            spec = fmt.get("json_schema")
            if not isinstance(spec, dict):
                raise bad("“response_format.json_schema” must be an object with a “schema”.", param)
            schema = spec.get("schema", {})
        elif kind != "text":
            raise bad("“response_format” must be of type text, json_object or json_schema.", param)
    if body.get("json_schema") is not None:
        if schema is not None:
            raise bad("Give either “response_format” or “json_schema”, not both.", param)
        schema, param = body["json_schema"], "json_schema"
    if schema is None:
        return None
    try:
        text = json.dumps(schema, ensure_ascii=False)
        json_grammar.check(text)
    except SchemaRefused as exc:
        raise bad(exc.user_message, param, "invalid_json_schema") from None
    except (TypeError, ValueError, RecursionError):
        raise bad("The JSON schema could not be read.", param, "invalid_json_schema") from None
    return text


def _stream(body: dict[str, Any]) -> tuple[bool, bool]:
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise bad("“stream” must be true or false.", "stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise bad("“stream_options” must be an object.", "stream_options")
    return stream, bool(stream and options.get("include_usage"))


def _strings(value: Any, param: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad(f"“{param}” must be a list of strings.", param)
    return tuple(value)


# -- responses ------------------------------------------------------------------------------


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


def now() -> int:
    return int(time.time())


def finish_reason(stats: GenerationStats | None) -> str:
    if stats is not None and stats.stop_reason in ("length", "context_full"):
        return "length"
    return "stop"


def usage(stats: GenerationStats | None) -> dict[str, int]:
    prompt = stats.prompt_tokens if stats else 0
    completion = stats.generated_tokens if stats else 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


@dataclass
class Answer:
    """What an answer gathered: its text, its stats, and for collections its sources."""

    text: str = ""
    stats: GenerationStats | None = None
    sources: list[dict[str, Any]] | None = None
    source_notes: list[str] | None = None
    notices: list[str] | None = None
    grounding: dict[str, Any] | None = None  # each sentence checked against the sources
    record: dict[str, Any] | None = None  # engine.answer_record's, linked to the audit trail

    def extras(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.sources is not None:
            out["sources"] = self.sources
            out["source_notes"] = self.source_notes or []
        if self.grounding is not None:
            out["grounding"] = self.grounding
        if self.record is not None:
            out["record"] = self.record
        if self.notices:
            out["notices"] = self.notices
        return out


def chat_response(rid: str, created: int, model: str, answer: Answer) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer.text},
                "logprobs": None,
                "finish_reason": finish_reason(answer.stats),
            }
        ],
        "usage": usage(answer.stats),
        **answer.extras(),
    }


def chat_chunk(
    rid: str,
    created: int,
    model: str,
    delta: dict[str, Any],
    finish: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        **extra,
    }


def completion_response(rid: str, created: int, model: str, answer: Answer) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "text": answer.text,
                "logprobs": None,
                "finish_reason": finish_reason(answer.stats),
            }
        ],
        "usage": usage(answer.stats),
        **answer.extras(),
    }


def completion_chunk(
    rid: str, created: int, model: str, text: str, finish: str | None = None
) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}],
    }


def usage_chunk(
    rid: str, created: int, model: str, obj: str, stats: GenerationStats | None
) -> dict[str, Any]:
    return {
        "id": rid,
        "object": obj,
        "created": created,
        "model": model,
        "choices": [],
        "usage": usage(stats),
    }


def embeddings_response(
    model: str, vectors: np.ndarray, encoding: str, tokens: Sequence[int]
) -> dict[str, Any]:
    data = []
    for i, row in enumerate(np.asarray(vectors, dtype="<f4")):
        value: Any = (
            base64.b64encode(row.tobytes()).decode("ascii")
            if encoding == "base64"
            else [float(x) for x in row]
        )
        data.append({"object": "embedding", "index": i, "embedding": value})
    total = int(sum(tokens))
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": total, "total_tokens": total},
    }


def model_entry(model_id: str, created: int, **extra: Any) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": "hearth", **extra}
