"""Answer a question from a collection: retrieve, assemble, stream, and keep the sources.

The sources are decided before the model says a word and travel as data (file, page, exact
quote, scores) beside the answer, never parsed back out of the model's text.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from engine.documents.library import DocumentLibrary
from engine.documents.prompting import Source, build_request
from engine.runtime.events import Event
from engine.runtime.params import ChatMessage, SamplingParams


@dataclass(frozen=True)
class Retrieved:
    """First event of a grounded answer: the passages the model is given, as sources."""

    collection: str
    sources: list[Source]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class NothingRelevant:
    """Documents-only mode found no passage above the relevance threshold; no model ran."""

    collection: str
    message: str


def answer(runtime: Any, library: DocumentLibrary, collection: str, question: str, *,
           sampling: SamplingParams, system: str | None, history: tuple[ChatMessage, ...] = (),
           documents_only: bool = False) -> Iterator[Retrieved | NothingRelevant | Event]:
    """Yield Retrieved (or NothingRelevant), then the runtime's TextPiece/Notice/Done."""
    result = library.search(collection, question)
    if not result.hits and documents_only:
        yield NothingRelevant(collection, (
            f"I found nothing in “{collection}” relevant to this question, so I will not "
            "guess. Try other words, or add the documents that cover it."))
        return
    loaded = runtime.loaded
    context_length = loaded.params.context_length if loaded is not None else 4096
    request, sources = build_request(
        question, result.hits, history=history, system=system, sampling=sampling,
        context_length=context_length, count_tokens=runtime.count_tokens)
    notes = list(result.notes)
    if not result.hits:
        notes.append(f"Nothing in “{collection}” was relevant; the model answers on its own.")
    elif len(sources) < len(result.hits):
        notes.append(f"{len(result.hits) - len(sources)} passages left out to fit the "
                     "context window.")
    yield Retrieved(collection, sources, notes)
    yield from runtime.stream_chat(request)
