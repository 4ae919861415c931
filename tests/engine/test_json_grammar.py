"""JSON schemas into llama.cpp grammars, and sampling held to them, on the real bundled model
loaded by llama.cpp in this process (the worker does the same through the runtime)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.errors import SchemaRefused
from engine.runtime import json_grammar
from engine.runtime.grammar_sampler import GrammarSampler

PERSON = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "age"],
    "properties": {
        "name": {"type": "string", "maxLength": 24},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
    },
}


def test_a_schema_becomes_a_grammar_that_names_its_fields() -> None:
    grammar = json_grammar.grammar_for(json.dumps(PERSON))
    assert "root ::=" in grammar
    assert '\\"name\\"' in grammar and '\\"age\\"' in grammar
    # strings take no raw control characters (JSON forbids them; the converter allowed them)
    char = [line for line in grammar.splitlines() if line.startswith("char ::=")]
    assert len(char) == 1 and char[0].startswith(r'char ::= [^"\\\x7F\x00-\x1F] |')


def test_items_of_any_kind_are_taken_as_the_converter_does_not() -> None:
    assert "root ::=" in json_grammar.grammar_for(
        json.dumps({"type": "object", "properties": {"tags": {"type": "array", "items": {}}}})
    )


@pytest.mark.parametrize(
    ("schema", "says"),
    [
        ({"$ref": "https://example.com/schema.json"}, "refers outside itself"),
        (
            {"type": "object", "properties": {"a": {"$ref": "file:///etc/passwd"}}},
            "refers outside itself",
        ),
        ([1, 2], "must be an object"),
        (False, "must be an object"),
        ({"type": "strnig"}, "cannot be turned into a grammar"),
        ({"$ref": "#/$defs/missing"}, "cannot be turned into a grammar"),
        # a nesting this deep overflowed llama.cpp's parser (SIGSEGV) before the limit
        ({"type": "string", "maxLength": 20_000}, "too large a grammar"),
        (
            json.loads('{"type": "array", "items": ' * 400 + '{"type": "integer"}' + "}" * 400),
            "too large a grammar",
        ),
        (
            {
                "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}},
                "$ref": "#/$defs/a",
            },
            "cannot be turned into a grammar",
        ),
    ],
)
def test_unusable_schemas_are_refused_with_a_reason(schema: Any, says: str) -> None:
    with pytest.raises(SchemaRefused) as err:
        json_grammar.grammar_for(json.dumps(schema))
    assert says in err.value.user_message


def test_an_oversized_schema_is_refused_before_it_is_read() -> None:
    big = {"type": "object", "description": "x" * (json_grammar.MAX_SCHEMA_CHARS + 1)}
    with pytest.raises(SchemaRefused, match="longer than"):
        json_grammar.check(json.dumps(big))


def test_nesting_ignores_brackets_inside_literals_and_classes() -> None:
    assert json_grammar.nesting('root ::= "(((" [()] ("a" ("b"))') == 2
    assert json_grammar.nesting('root ::= "\\"(" x') == 0
    assert json_grammar.nesting("# ((( comment\nroot ::= (x)") == 1


# -- sampling on the real model --------------------------------------------------------------


@pytest.fixture(scope="module")
def llm(bundled_gguf: Path) -> Iterator[Any]:
    import llama_cpp

    model = llama_cpp.Llama(str(bundled_gguf), n_ctx=1024, n_threads=2, verbose=False)
    yield model
    model.close()


def _decode(llm: Any, prompt: str, pick: Any, n: int) -> list[int]:
    """Greedy-ish decoding loop: `pick()` chooses each token from the current logits."""
    import llama_cpp

    llm.reset()
    llm.eval(llm.tokenize(prompt.encode(), special=True))
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    out: list[int] = []
    for _ in range(n):
        token = pick()
        if llama_cpp.llama_vocab_is_eog(vocab, token):
            break
        out.append(token)
        llm.eval([token])
    return out


def _chain(llama_cpp: Any, greedy: bool) -> Any:
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    if greedy:
        llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_greedy())
    else:
        llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_temp(0.9))
        llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_dist(11))
    return chain


PROMPT = (
    "<|im_start|>user\nBob is 42 years old. Reply with his name and age.<|im_end|>\n"
    "<|im_start|>assistant\n"
)


def test_sampling_first_then_checking_equals_the_grammar_over_everything(llm: Any) -> None:
    """Greedy: the free choice, checked and resampled when refused, is token for token what a
    grammar applied to the whole vocabulary first gives; and the check does refuse some."""
    import llama_cpp

    grammar = json_grammar.grammar_for(json.dumps(PERSON))
    vocab = llama_cpp.llama_model_get_vocab(llm.model)

    chain = _chain(llama_cpp, greedy=True)
    fast = GrammarSampler(llama_cpp, llm.ctx, vocab, chain, grammar)
    try:
        got = _decode(llm, PROMPT, fast.sample, 80)
        resampled = fast.resampled
    finally:
        fast.free()
        llama_cpp.llama_sampler_free(chain)

    full = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    llama_cpp.llama_sampler_chain_add(
        full, llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
    )
    llama_cpp.llama_sampler_chain_add(full, llama_cpp.llama_sampler_init_greedy())
    try:
        want = _decode(llm, PROMPT, lambda: llama_cpp.llama_sampler_sample(full, llm.ctx, -1), 80)
    finally:
        llama_cpp.llama_sampler_free(full)

    assert got == want
    text = llm.detokenize(got).decode()
    value = json.loads(text)
    assert set(value) == {"name", "age"} and isinstance(value["age"], int)
    assert resampled > 0, "the model's free choice broke the grammar at least once here"


def test_sampled_answers_always_match_the_schema(llm: Any) -> None:
    import jsonschema
    import llama_cpp

    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    grammar = json_grammar.grammar_for(json.dumps(PERSON))
    for _ in range(3):
        chain = _chain(llama_cpp, greedy=False)
        sampler = GrammarSampler(llama_cpp, llm.ctx, vocab, chain, grammar)
        try:
            tokens = _decode(llm, PROMPT, sampler.sample, 120)
        finally:
            sampler.free()
            llama_cpp.llama_sampler_free(chain)
        jsonschema.validate(json.loads(llm.detokenize(tokens).decode()), PERSON)


def test_a_grammar_llama_cpp_cannot_parse_is_refused_not_crashed(llm: Any) -> None:
    import llama_cpp

    chain = _chain(llama_cpp, greedy=True)
    try:
        with pytest.raises(SchemaRefused):
            GrammarSampler(
                llama_cpp, llm.ctx, llama_cpp.llama_model_get_vocab(llm.model), chain, "root ::= ("
            )
    finally:
        llama_cpp.llama_sampler_free(chain)
