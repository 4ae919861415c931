"""Events a generation stream yields: text pieces, warnings, then exactly one `Done`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

StopReason = Literal["eos", "length", "stop_string", "cancelled", "context_full"]


@dataclass(frozen=True)
class TextPiece:
    text: str


@dataclass(frozen=True)
class Notice:
    """Something the user should know that does not stop the answer (e.g. a template fallback)."""

    message: str


@dataclass(frozen=True)
class GenerationStats:
    prompt_tokens: int  # tokens in the rendered prompt
    cached_tokens: int  # of those, reused from the KV cache without being read again
    generated_tokens: int
    time_to_first_token_s: float  # from the request to the first piece, as the caller saw it
    prefill_tokens_per_s: float  # prompt tokens actually evaluated, per second
    tokens_per_s: float  # decode speed after the first token
    total_s: float
    stop_reason: StopReason
    drafted_tokens: int = 0  # guessed from the prompt (engine/runtime/lookup.py)
    accepted_tokens: int = 0  # of those, the ones the model agreed with and kept

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Done:
    stats: GenerationStats


Event = TextPiece | Notice | Done
