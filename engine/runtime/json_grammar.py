"""Answers held to a JSON shape: a JSON Schema turned into a llama.cpp grammar.

The conversion is llama-cpp-python's own `json_schema_to_gbnf` (the port of llama.cpp's
json-schema-to-grammar), and llama.cpp parses the grammar it gives, so this runs in the model
worker, which already holds llama_cpp. Schemas come from API clients, so they are checked
first: that converter would fetch an `https://` `$ref` if its asserts were compiled out, and
llama.cpp's grammar parser recurses once per nesting level, so a `maxLength` of 20,000 is a
grammar deep enough to overflow the worker's stack (seen here: SIGSEGV).
"""

from __future__ import annotations

import functools
import json
from typing import Any

from engine.errors import SchemaRefused

MAX_SCHEMA_CHARS = 64_000
MAX_GRAMMAR_CHARS = 256_000
# llama.cpp refused a 2,000-character string bound on its own ("exceeds sane defaults") and
# parsed 1,000; past a few thousand it crashes instead of refusing.
MAX_NESTING = 1_000
# llama-cpp-python's converter lets raw control characters (a newline, say) into strings,
# which JSON forbids (seen here: a sampled answer json.loads refused); llama.cpp's own
# json.gbnf excludes them, and so does this rule.
_LOOSE_CHAR = r'char ::= [^"\\] |'
_JSON_CHAR = r'char ::= [^"\\\x7F\x00-\x1F] |'


def check(schema_text: str) -> dict[str, Any]:
    """The schema, if it is one this module will try (no llama_cpp needed, so the API
    process refuses the obvious at once); raises SchemaRefused."""
    if len(schema_text) > MAX_SCHEMA_CHARS:
        raise SchemaRefused(f"The JSON schema is longer than {MAX_SCHEMA_CHARS:,} characters.")
    try:
        schema = json.loads(schema_text)
    except (ValueError, RecursionError):
        raise SchemaRefused("The JSON schema is not valid JSON.") from None
    if schema is True:
        schema = {}
    if not isinstance(schema, dict):
        raise SchemaRefused("A JSON schema must be an object (or true).")
    _refuse_outside_refs(schema)
    try:
        return _without_empty_items(schema)
    except RecursionError:
        raise SchemaRefused("The JSON schema is nested too deeply.") from None


@functools.lru_cache(maxsize=32)
def grammar_for(schema_text: str) -> str:
    """The GBNF grammar (root rule `root`) for `schema_text`; raises SchemaRefused."""
    schema = check(schema_text)
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        grammar = json_schema_to_gbnf(json.dumps(schema))
    except (
        AssertionError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        IndexError,
        RecursionError,
    ) as exc:  # the converter reports what it cannot do with asserts
        raise SchemaRefused(
            f"This JSON schema cannot be turned into a grammar: {str(exc)[:300]}"
        ) from None
    grammar = grammar.replace(_LOOSE_CHAR, _JSON_CHAR)
    if len(grammar) > MAX_GRAMMAR_CHARS or nesting(grammar) > MAX_NESTING:
        raise SchemaRefused(
            "This JSON schema makes too large a grammar for llama.cpp: "
            "lower bounds such as maxLength or maxItems (in the thousands), "
            "or nest it less deeply."
        )
    return grammar


def _refuse_outside_refs(node: Any) -> None:
    """Only `#/...` references into the schema itself: nothing is fetched, nothing read."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if ref is not None and not (isinstance(ref, str) and ref.startswith("#")):
                raise SchemaRefused(
                    f"The JSON schema refers outside itself ($ref "
                    f"{str(ref)[:100]!r}); only #/ references are followed."
                )
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _without_empty_items(node: Any) -> Any:
    """`items: {}` (or true) means any items, as no `items` does; the converter reads the
    empty schema as falsy and fails looking for `prefixItems` instead."""
    if isinstance(node, list):
        return [_without_empty_items(v) for v in node]
    if not isinstance(node, dict):
        return node
    return {
        k: _without_empty_items(v)
        for k, v in node.items()
        if not (k == "items" and (v == {} or v is True))
    }


def nesting(grammar: str) -> int:
    """The deepest parenthesis nesting in a GBNF grammar, outside literals and classes."""
    depth = deepest = 0
    quote: str | None = None  # the closing character while inside "..." or [...]
    escaped = False
    for ch in grammar:
        if quote is not None:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
        elif ch == '"':
            quote = '"'
        elif ch == "[":
            quote = "]"
        elif ch == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif ch == ")":
            depth -= 1
        elif ch == "#":  # a comment runs to the end of the line
            quote = "\n"
    return deepest
