"""Chat templates come from model files, so they are untrusted code: rendered in jinja2's
sandbox, with a ChatML fallback and a notice when they are missing or refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.runtime import (
    ChatMessage,
    ChatRequest,
    Done,
    LoadParams,
    Notice,
    SamplingParams,
    TextPiece,
)
from engine.runtime.chat_template import render
from tests.gguf_tools import with_string_metadata
from tests.runtimes import bundled_system_prompt, new_runtime

MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]

# Each tries to leave the sandbox and create MARKER; {marker} is filled in per test.
HOSTILE = {
    "globals_via_cycler": "{{ cycler.__init__.__globals__.os.popen('touch {marker}').read() }}",
    "subclasses_popen": (
        "{% for c in ''.__class__.__mro__[1].__subclasses__() %}"
        "{% if c.__name__ == 'Popen' %}{{ c(['touch', '{marker}']) }}{% endif %}{% endfor %}"
    ),
    "builtins_open": (
        "{{ self.__init__.__globals__.__builtins__.open('{marker}', 'w').write('x') }}"
    ),
    "format_escape": "{{ '{0.__class__.__init__.__globals__}'.format(messages) }}",
    "attr_filter": "{{ (messages|attr('__class__')|attr('__mro__'))[1]|attr('__subclasses__')() }}",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_template_has_no_side_effect(tmp_path: Path, name: str) -> None:
    marker = tmp_path / "escaped"
    template = HOSTILE[name].replace("{marker}", str(marker))
    rendered = render(template, MESSAGES, bos_token="", eos_token="<|im_end|>")
    assert not marker.exists()
    assert "__globals__" not in rendered.text and "<class" not in rendered.text
    assert "Popen" not in rendered.text


def test_missing_template_falls_back_to_chatml_with_a_notice() -> None:
    rendered = render(None, MESSAGES, bos_token="", eos_token="")
    assert rendered.used_fallback and rendered.notice and "ChatML" in rendered.notice
    assert rendered.text.endswith("<|im_start|>assistant\n")


@pytest.fixture(scope="module")
def hostile_model(
    bundled_gguf: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("hostile")
    marker = folder / "escaped"
    template = HOSTILE["globals_via_cycler"].replace("{marker}", str(marker))
    model = with_string_metadata(
        bundled_gguf, folder / "hostile.gguf", "tokenizer.chat_template", template
    )
    return model, marker


def test_model_with_hostile_template_answers_safely(hostile_model: tuple[Path, Path]) -> None:
    model, marker = hostile_model
    with new_runtime() as rt:
        rt.load(LoadParams(str(model)))
        events = list(
            rt.stream_chat(
                ChatRequest(
                    (ChatMessage("user", "What is the capital of France?"),),
                    SamplingParams(temperature=0, max_tokens=32),
                    bundled_system_prompt(),
                )
            )
        )
    assert not marker.exists()
    notices = [e.message for e in events if isinstance(e, Notice)]
    assert notices and "could not be used" in notices[0]
    assert isinstance(events[-1], Done)
    assert "Paris" in "".join(e.text for e in events if isinstance(e, TextPiece))


def test_model_without_template_warns_and_answers(bundled_gguf: Path, tmp_path: Path) -> None:
    model = with_string_metadata(
        bundled_gguf, tmp_path / "no-template.gguf", "tokenizer.chat_template", None
    )
    with new_runtime() as rt:
        rt.load(LoadParams(str(model)))
        events = list(
            rt.stream_chat(
                ChatRequest(
                    (ChatMessage("user", "Hello"),), SamplingParams(temperature=0, max_tokens=8)
                )
            )
        )
    assert any(isinstance(e, Notice) and "no chat template" in e.message for e in events)
    assert isinstance(events[-1], Done)
