"""One declarative, versioned settings schema.

Each setting is declared once, with its type, default, bounds and a description that the UI
and ``hearth doctor`` can show. The stored file holds only what differs from the defaults, so a
new default reaches users who never touched the setting. Machine policy (a later layer) locks
keys: a locked key keeps the policy's value and refuses changes, with the reason.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import files
from engine.errors import SettingsError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Setting:
    key: str
    type: type
    default: Any
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None

    def validate(self, value: Any) -> Any:
        """Return the value coerced to this setting's type, or raise SettingsError."""
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if self.type is list:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise SettingsError(f"“{self.key}” must be a list of text values.")
            return list(value)
        if not isinstance(value, self.type) or (self.type is int and isinstance(value, bool)):
            raise SettingsError(
                f"“{self.key}” must be {self.type.__name__}, not {type(value).__name__}."
            )
        if self.minimum is not None and value < self.minimum:  # type: ignore[operator]
            raise SettingsError(f"“{self.key}” must be at least {self.minimum}.")
        if self.maximum is not None and value > self.maximum:  # type: ignore[operator]
            raise SettingsError(f"“{self.key}” must be at most {self.maximum}.")
        if self.choices is not None and value not in self.choices:
            raise SettingsError(f"“{self.key}” must be one of {', '.join(map(str, self.choices))}.")
        return value


SCHEMA: tuple[Setting, ...] = (
    Setting(
        "model.default",
        str,
        "bundled:smollm2-135m-instruct-q4_1",
        "Model used for new chats: a catalog id, 'bundled:…' or a path to a GGUF file.",
    ),
    Setting(
        "inference.context_length",
        int,
        4096,
        "Context window in tokens (prompt plus answer). Larger uses more memory.",
        minimum=256,
        maximum=1_048_576,
    ),
    Setting(
        "inference.threads",
        int,
        0,
        "CPU threads for generation; 0 picks the number of physical cores.",
        minimum=0,
        maximum=512,
    ),
    Setting(
        "inference.batch_size",
        int,
        512,
        "Tokens evaluated per step while reading the prompt.",
        minimum=1,
        maximum=8192,
    ),
    Setting(
        "inference.gpu_layers",
        int,
        -1,
        "Layers offloaded to the GPU: 0 keeps everything on the CPU, -1 offloads all. "
        "Ignored by a llama.cpp build without GPU support.",
        minimum=-1,
        maximum=100_000,
    ),
    Setting(
        "inference.kv_cache_type",
        str,
        "f16",
        "How the context (KV cache) is stored: f16 as the model computes it; q8_0 about half "
        "the memory, q4_0 about a quarter, for long contexts on small machines, at some cost "
        "in accuracy. Quantized caches turn flash attention on.",
        choices=("f16", "q8_0", "q4_0"),
    ),
    Setting(
        "inference.flash_attention",
        str,
        "auto",
        "Flash attention: auto uses it where it helps (a GPU, or a quantized KV cache); on "
        "or off forces it.",
        choices=("auto", "on", "off"),
    ),
    Setting(
        "inference.lookup_decoding",
        bool,
        True,
        "Guess the next tokens from the prompt and the answer so far, and let the model check "
        "the guess in one step: faster when answers quote their documents, the same words "
        "either way. It stops guessing within an answer when guesses keep failing.",
    ),
    Setting(
        "inference.unload_after_minutes",
        float,
        30.0,
        "Unload the model after this many minutes without use, giving its memory back; the "
        "next message loads it again. 0 keeps it loaded.",
        minimum=0.0,
        maximum=10_080.0,
    ),
    Setting(
        "sampling.temperature",
        float,
        0.7,
        "Randomness: 0 always picks the most likely token.",
        minimum=0.0,
        maximum=5.0,
    ),
    Setting(
        "sampling.top_p",
        float,
        0.95,
        "Nucleus sampling: keep the most likely tokens up to this total probability.",
        minimum=0.0,
        maximum=1.0,
    ),
    Setting(
        "sampling.top_k",
        int,
        40,
        "Keep only the k most likely tokens; 0 disables the limit.",
        minimum=0,
        maximum=100_000,
    ),
    Setting(
        "sampling.min_p",
        float,
        0.05,
        "Drop tokens less likely than this fraction of the most likely one.",
        minimum=0.0,
        maximum=1.0,
    ),
    Setting(
        "sampling.repeat_penalty",
        float,
        1.1,
        "Penalty for repeating recent tokens; 1.0 disables it.",
        minimum=0.0,
        maximum=5.0,
    ),
    Setting(
        "sampling.max_tokens", int, 1024, "Longest answer in tokens.", minimum=1, maximum=1_048_576
    ),
    Setting(
        "sampling.seed",
        int,
        -1,
        "Random seed; -1 picks a new one for every answer.",
        minimum=-1,
        maximum=2**32 - 1,
    ),
    Setting(
        "chat.system_prompt",
        str,
        "You are a helpful assistant.",
        "Instructions given to the model before every chat.",
    ),
    Setting(
        "chat.stop_strings",
        list,
        [],
        "Extra strings that end an answer when the model writes them.",
    ),
    Setting(
        "ui.theme",
        str,
        "system",
        "Colours of the window: follow the system, light or dark.",
        choices=("system", "light", "dark"),
    ),
    Setting(
        "ui.welcomed",
        bool,
        False,
        "The first-run welcome was seen and closed; it is not shown again.",
    ),
    Setting(
        "privacy.offline_mode", bool, False, "Forbid every network request, downloads included."
    ),
    Setting(
        "privacy.debug_logging",
        bool,
        False,
        "Write prompts, answers and document passages to the log file, to diagnose a "
        "problem. Off, the log holds no content.",
    ),
    Setting(
        "privacy.encrypt_chats",
        bool,
        False,
        "Encrypt the chat history on disk (SQLCipher), with a key kept in this computer's "
        "keyring. Applied when Hearth next starts; needs a keyring.",
    ),
    Setting(
        "privacy.retention_days",
        int,
        0,
        "Delete chats not used for this many days, at start; 0 keeps them.",
        minimum=0,
        maximum=36_500,
    ),
    Setting(
        "audit.retention_days",
        int,
        0,
        "Remove audit records (answers and API requests) older than this many days, at "
        "start, each removal itself recorded; 0 keeps them.",
        minimum=0,
        maximum=36_500,
    ),
    Setting(
        "remote.allowed",
        bool,
        True,
        "Allow model servers and shared document collections on other computers: only "
        "those listed in remote.servers and remote.chroma_servers, never others. Offline "
        "mode forbids them too. A machine policy can turn this off.",
    ),
    Setting(
        "remote.servers",
        list,
        [],
        "OpenAI-compatible model servers (llama.cpp's server, vLLM, Ollama, LM Studio, "
        "another Hearth) by base URL, e.g. https://gpu.example.org:8080/v1. Their tokens "
        "are kept in this computer's keyring, never here.",
    ),
    Setting(
        "remote.chroma_servers",
        list,
        [],
        "Chroma servers holding shared document collections, by URL, e.g. "
        "https://chroma.example.org:8000. Their tokens are kept in the keyring.",
    ),
    Setting(
        "remote.allowed_hosts",
        list,
        [],
        "When not empty, the only hosts (name, or name:port) a server may be on. Usually "
        "set by machine policy.",
    ),
    Setting(
        "remote.ca_bundle",
        str,
        "",
        "A PEM file of certificate authorities to trust for servers (an internal CA); "
        "empty trusts the system's. Certificates are always verified.",
    ),
    Setting(
        "remote.timeout_s",
        float,
        60.0,
        "Seconds to wait for a server: to connect, and between streamed pieces of an "
        "answer, before the turn ends with an error.",
        minimum=1.0,
        maximum=3600.0,
    ),
    Setting(
        "downloads.allowed",
        bool,
        True,
        "Allow model downloads. A machine policy can turn this off.",
    ),
    Setting(
        "downloads.endpoint",
        str,
        "https://huggingface.co",
        "Where models are downloaded from: the Hugging Face Hub or an internal mirror "
        "that speaks the same protocol.",
    ),
    Setting(
        "downloads.allowed_models",
        list,
        [],
        "Catalog ids that may be downloaded; empty allows every catalog model.",
    ),
    Setting(
        "models.allowed_sha256",
        list,
        [],
        "SHA-256 checksums of the model files that may be loaded or downloaded; empty "
        "allows any. Usually set by machine policy.",
    ),
    Setting(
        "models.pack_keys",
        list,
        [],
        "Public keys (ed25519:…) whose signed model packs may be imported. Usually set "
        "by machine policy; when the policy sets it, no other key is accepted.",
    ),
    Setting(
        "models.search_folders",
        list,
        [],
        "Extra folders to look in for GGUF files other apps downloaded.",
    ),
    Setting(
        "api.enabled",
        bool,
        False,
        "Run the local OpenAI-compatible API server while Hearth runs. Every request "
        "needs this installation's token. A machine policy can turn it off.",
    ),
    Setting(
        "api.host",
        str,
        "127.0.0.1",
        "Address the API server listens on. Only this computer (127.0.0.1 or ::1) "
        "unless the machine policy lists the address in api.allowed_hosts.",
    ),
    Setting("api.port", int, 8431, "TCP port of the API server.", minimum=1, maximum=65_535),
    Setting(
        "api.allowed_hosts",
        list,
        [],
        "Addresses other than loopback the API server may listen on (0.0.0.0 for all). "
        "Honoured only when set by a machine policy.",
    ),
    Setting(
        "api.cors_origins",
        list,
        [],
        "Web page origins (like http://localhost:3000) allowed to call the API from a "
        "browser; empty allows none.",
    ),
    Setting(
        "api.load_models",
        bool,
        True,
        "Let an API request load another installed model in place of the one loaded "
        "(there is only ever one).",
    ),
    Setting(
        "api.max_request_mb",
        int,
        4,
        "Largest request body the API server reads, in megabytes.",
        minimum=1,
        maximum=1024,
    ),
    Setting(
        "api.max_queue",
        int,
        16,
        "API requests that may wait for the model at once; more are told the server is "
        "busy (HTTP 503).",
        minimum=1,
        maximum=1024,
    ),
    Setting(
        "documents.top_k",
        int,
        6,
        "Passages retrieved from documents for each question.",
        minimum=1,
        maximum=50,
    ),
    Setting(
        "documents.min_score",
        float,
        0.30,
        "Least cosine similarity (0-1) for a passage to count as relevant to a question.",
        minimum=0.0,
        maximum=1.0,
    ),
    Setting(
        "documents.embedder",
        str,
        "bundled:all-minilm-l6-v2",
        "Embedder for new collections (a collection keeps the one it was made with until "
        "`hearth docs embedder` changes it): all-MiniLM-L6-v2, or bge-small-en-v1.5 "
        "(int8), slower to index; docs/documents.md compares them.",
        choices=("bundled:all-minilm-l6-v2", "bundled:bge-small-en-v1.5-int8"),
    ),
    Setting(
        "documents.chunk_tokens",
        int,
        200,
        "Length of a passage in the embedder's word pieces (at most 254 for "
        "all-MiniLM-L6-v2, which reads 256 including its two markers).",
        minimum=32,
        maximum=254,
    ),
    Setting(
        "documents.chunk_overlap",
        int,
        40,
        "Word pieces a passage shares with the one before it, so a sentence cut at a "
        "boundary is still found whole.",
        minimum=0,
        maximum=128,
    ),
    Setting(
        "documents.ocr",
        bool,
        True,
        "Read scanned PDF pages (pages without a text layer) by optical character "
        "recognition, on this computer. Slow: seconds per page.",
    ),
    Setting(
        "documents.strict",
        bool,
        False,
        "Strict answers from documents: the answer is shown once it has been checked against "
        "the sources, with each sentence they do not back struck through and marked.",
    ),
    Setting(
        "documents.parse_timeout_s",
        float,
        60.0,
        "Longest time one file may take to read before it is marked failed; for a "
        "scanned PDF, the longest time one page may take.",
        minimum=1.0,
        maximum=3600.0,
    ),
    Setting(
        "documents.parse_memory_mb",
        int,
        2048,
        "Memory cap for the process that reads untrusted files.",
        minimum=256,
        maximum=65_536,
    ),
    Setting(
        "documents.max_file_mb", int, 256, "Larger files are skipped.", minimum=1, maximum=65_536
    ),
)

_BY_KEY = {s.key: s for s in SCHEMA}


def describe() -> list[dict[str, Any]]:
    """The schema as plain data (for the UI, the CLI and docs)."""
    return [
        {
            "key": s.key,
            "type": s.type.__name__,
            "default": s.default,
            "description": s.description,
            "minimum": s.minimum,
            "maximum": s.maximum,
            "choices": s.choices,
        }
        for s in SCHEMA
    ]


@dataclass
class Settings:
    """Current values: defaults, then the user's file, then locks (policy) on top."""

    path: Path | None = None
    _values: dict[str, Any] = field(default_factory=dict)
    locked: dict[str, str] = field(default_factory=dict)  # key -> reason shown to the user
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def load(
        cls, path: Path | None, locks: Mapping[str, tuple[Any, str]] | None = None
    ) -> Settings:
        """Read the user's file; bad or unknown entries fall back to defaults with a warning."""
        settings = cls(path=path)
        stored: dict[str, Any] = {}
        if path is not None and path.exists():
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
                if not isinstance(doc, dict):
                    raise ValueError("not a JSON object")
                stored = doc.get("values", {}) if isinstance(doc.get("values"), dict) else {}
                if doc.get("version") != SCHEMA_VERSION:
                    stored = _migrate(doc.get("version"), stored)
            except (OSError, ValueError) as exc:
                settings.warnings.append(
                    f"The settings file {path} could not be read ({exc}); defaults are used."
                )
        for key, value in stored.items():
            spec = _BY_KEY.get(key)
            if spec is None:
                settings.warnings.append(f"Unknown setting “{key}” ignored.")
                continue
            try:
                settings._values[key] = spec.validate(value)
            except SettingsError as exc:
                settings.warnings.append(f"{exc.user_message} The default is used.")
        for key, (value, reason) in (locks or {}).items():
            settings._values[key] = declaration(key).validate(value)
            settings.locked[key] = reason
        for w in settings.warnings:
            log.warning("%s", w)
        return settings

    def get(self, key: str) -> Any:
        spec = declaration(key)
        value = self._values.get(key, spec.default)
        return list(value) if isinstance(value, list) else value

    def explicit(self, key: str) -> bool:
        """Whether `key` holds a value the user chose or the policy fixed, not its default."""
        return declaration(key).key in self._values

    def set(self, key: str, value: Any) -> None:
        spec = declaration(key)
        if key in self.locked:
            raise SettingsError(f"“{key}” is set by your organisation: {self.locked[key]}")
        self._values[key] = spec.validate(value)

    def reset(self, key: str) -> None:
        if key in self.locked:
            raise SettingsError(f"“{key}” is set by your organisation: {self.locked[key]}")
        self._values.pop(declaration(key).key, None)

    def as_dict(self) -> dict[str, Any]:
        return {s.key: self.get(s.key) for s in SCHEMA}

    def save(self) -> None:
        """Write what differs from the defaults, atomically (a crash never leaves half a file)."""
        if self.path is None:
            return
        values = {
            k: v
            for k, v in self._values.items()
            if k not in self.locked and v != _BY_KEY[k].default
        }
        doc = {"version": SCHEMA_VERSION, "values": values}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        files.write_atomic(self.path, json.dumps(doc, indent=2, sort_keys=True))


def declaration(key: str) -> Setting:
    """The declaration of `key`, or SettingsError."""
    try:
        return _BY_KEY[key]
    except KeyError:
        raise SettingsError(f"There is no setting called “{key}”.") from None


def _migrate(version: Any, values: dict[str, Any]) -> dict[str, Any]:
    """Bring values from an older schema version forward. Version 1 is the first."""
    if version is None or version == SCHEMA_VERSION:
        return values
    log.warning("Settings file has schema version %r; reading what still applies.", version)
    return values
