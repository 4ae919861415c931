"""Immutable inputs to the model worker: how to load a model and how to sample an answer.

They cross a process boundary, so they hold plain values only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import psutil


def default_threads() -> int:
    """Physical cores: llama.cpp decodes no faster on hyper-threads and often slower."""
    return max(1, psutil.cpu_count(logical=False) or os.cpu_count() or 1)


@dataclass(frozen=True)
class LoadParams:
    # A GGUF file; for a model on a server, its id "remote:<host:port>/<model>" (engine.remote).
    model_path: str
    context_length: int = 4096
    threads: int = 0  # 0: physical cores
    gpu_layers: int = -1  # -1: all that the build can offload; 0: CPU only
    batch_size: int = 512
    server: str = ""  # the server's URL for a remote model; empty for a local file
    kv_cache_type: str = "f16"  # "f16", "q8_0" or "q4_0", for both K and V
    flash_attention: str = "auto"  # "auto", "on" or "off"
    lookup_draft: int = 8  # most tokens guessed from the prompt per step; 0: plain decoding
    # llama.cpp's plain CPU kernels only: no weights repacked for AMX or the CPU's wider
    # kernels (its "extra buffer types"). The runtime sets it after the fast kernels crashed
    # (llama.cpp issue #20824: the AMX kernel faults on Sapphire Rapids); same answers, slower.
    plain_cpu_kernels: bool = False

    @property
    def remote(self) -> bool:
        return bool(self.server)

    def resolved_threads(self) -> int:
        return self.threads if self.threads > 0 else default_threads()

    def uses_flash_attention(self, gpu_layers: int) -> bool:
        """On when forced; with "auto", where it is needed or helps: offloaded layers, or a
        quantized cache (llama.cpp needs flash attention to quantize the V cache). On the CPU
        with an f16 cache it stays off: there, llama-bench decodes the bundled model at 0.76x
        the speed with it after 1,500 tokens of context (docs/performance.md)."""
        if self.flash_attention != "auto":
            return self.flash_attention == "on"
        return gpu_layers != 0 or self.kv_cache_type != "f16"


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    frequency_penalty: float = 0.0  # OpenAI's: subtracted per earlier use of a token
    presence_penalty: float = 0.0  # OpenAI's: subtracted once a token has been used
    max_tokens: int = 1024
    seed: int = -1  # -1: a new random seed for every answer
    stop: tuple[str, ...] = ()
    # A JSON Schema (as JSON text) the answer must match, enforced token by token by a
    # llama.cpp grammar (`engine.runtime.json_grammar`); None: free text.
    json_schema: str | None = None


@dataclass(frozen=True)
class ChatMessage:
    role: str  # "system", "user" or "assistant"
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class ChatRequest:
    messages: tuple[ChatMessage, ...]
    sampling: SamplingParams = field(default_factory=SamplingParams)
    system_prompt: str | None = None
    # Text to continue exactly as given, without the chat template (the API's /v1/completions);
    # `messages` and `system_prompt` are then ignored.
    raw_prompt: str | None = None

    def estimated_tokens(self) -> int:
        """Prompt tokens without a tokenizer to count with (a model on a server, a prompt
        built before any model is loaded): about 3 characters a token, plus room for the chat
        template's markers; cautious, so a prompt is cut early rather than refused."""
        if self.raw_prompt is not None:
            return len(self.raw_prompt) // 3 + 1
        return sum(len(m["content"]) for m in self.template_messages()) // 3 + 16

    def template_messages(self) -> list[dict[str, str]]:
        """The messages as the chat template expects them, system prompt first."""
        out = [m.as_dict() for m in self.messages]
        if self.system_prompt and not (out and out[0]["role"] == "system"):
            out.insert(0, {"role": "system", "content": self.system_prompt})
        return out


def sampling_from_settings(settings: Any) -> SamplingParams:
    """The user's sampling settings (`engine.settings`). Load parameters come from
    `engine.models.load_params`, which also holds the model to the machine policy."""
    return SamplingParams(
        temperature=settings.get("sampling.temperature"),
        top_p=settings.get("sampling.top_p"),
        top_k=settings.get("sampling.top_k"),
        min_p=settings.get("sampling.min_p"),
        repeat_penalty=settings.get("sampling.repeat_penalty"),
        max_tokens=settings.get("sampling.max_tokens"),
        seed=settings.get("sampling.seed"),
        stop=tuple(settings.get("chat.stop_strings")),
    )


def load_params_from_dict(d: dict[str, Any]) -> LoadParams:
    return LoadParams(**d)


def chat_request_to_dict(req: ChatRequest) -> dict[str, Any]:
    return {
        "messages": [m.as_dict() for m in req.messages],
        "sampling": {**req.sampling.__dict__, "stop": list(req.sampling.stop)},
        "system_prompt": req.system_prompt,
        "raw_prompt": req.raw_prompt,
    }


def chat_request_from_dict(d: dict[str, Any]) -> ChatRequest:
    sampling = dict(d.get("sampling") or {})
    sampling["stop"] = tuple(sampling.get("stop") or ())
    return ChatRequest(
        messages=tuple(ChatMessage(m["role"], m["content"]) for m in d["messages"]),
        sampling=SamplingParams(**sampling),
        system_prompt=d.get("system_prompt"),
        raw_prompt=d.get("raw_prompt"),
    )
