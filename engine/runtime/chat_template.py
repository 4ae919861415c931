"""Turn chat messages into a prompt with the model's own template, safely.

The template comes from the GGUF file, so it is untrusted code: it is rendered by
llama-cpp-python's `Jinja2ChatFormatter`, which uses jinja2's ImmutableSandboxedEnvironment
(no attribute access to internals, no mutation of passed objects). A missing template, or one
that fails or is refused by the sandbox, falls back to ChatML with a notice, never a crash.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)

FALLBACK_NAME = "ChatML"
# Templates are at most a few tens of kilobytes; a huge one is a hostile file, not a model.
MAX_TEMPLATE_CHARS = 256 * 1024


@dataclass(frozen=True)
class RenderedPrompt:
    text: str
    used_fallback: bool
    notice: str | None = None


def chatml(messages: list[dict[str, str]]) -> str:
    parts = [f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages]
    return "".join(parts) + "<|im_start|>assistant\n"


def render(
    template: str | None, messages: list[dict[str, str]], *, bos_token: str, eos_token: str
) -> RenderedPrompt:
    """Render `messages` with `template` in the sandbox, or fall back to ChatML."""
    if not template:
        return RenderedPrompt(
            chatml(messages),
            True,
            f"This model file has no chat template; Hearth is using the generic "
            f"{FALLBACK_NAME} format, so answers may be less accurate.",
        )
    if len(template) > MAX_TEMPLATE_CHARS:
        return RenderedPrompt(
            chatml(messages),
            True,
            f"This model's chat template is implausibly large ({len(template):,} characters) "
            f"and was not used; Hearth is using the generic {FALLBACK_NAME} format.",
        )
    try:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        formatter = Jinja2ChatFormatter(
            template=template, eos_token=eos_token, bos_token=bos_token, add_generation_prompt=True
        )
        prompt = formatter(messages=messages).prompt  # type: ignore[arg-type]
    except Exception as exc:  # the sandbox's SecurityError, template syntax or runtime errors
        log.warning("chat template refused or failed: %s: %s", type(exc).__name__, exc)
        return RenderedPrompt(
            chatml(messages),
            True,
            f"This model's chat template could not be used ({type(exc).__name__}: "
            f"{str(exc)[:200]}); Hearth is using the generic {FALLBACK_NAME} format.",
        )
    if not isinstance(prompt, str) or not prompt.strip():
        return RenderedPrompt(
            chatml(messages),
            True,
            f"This model's chat template produced an empty prompt; Hearth is using the generic "
            f"{FALLBACK_NAME} format.",
        )
    return RenderedPrompt(prompt, False)
