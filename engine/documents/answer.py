"""Answer a question from a collection: retrieve, assemble, stream, and keep the sources.

The sources are decided before the model says a word and travel as data (file, page, exact
quote, scores) beside the answer, never parsed back out of the model's text.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Generator, Sequence
from typing import Any

from engine.documents import grounding
from engine.documents.events import Grounded, NothingRelevant, Retrieved
from engine.documents.library import Documents, SearchResult
from engine.documents.prompting import build_request
from engine.runtime.events import Done, Event, Notice, TextPiece
from engine.runtime.params import ChatMessage, LoadParams, SamplingParams

log = logging.getLogger(__name__)


def answer(
    runtime: Any,
    library: Documents,
    collection: str | Sequence[str],
    question: str,
    *,
    sampling: SamplingParams,
    system: str | None,
    history: tuple[ChatMessage, ...] = (),
    documents_only: bool = False,
    model: LoadParams | None = None,
) -> Generator[Retrieved | NothingRelevant | Event | Grounded, None, None]:
    """Yield Retrieved (or NothingRelevant), then the runtime's TextPiece/Notice/Done, then
    Grounded: each sentence of the answer checked against the sources.

    Several collections are searched one by one and their passages merged by fused score
    (rank-based, so comparable across collections). With `model`, that model answers (see
    `ModelRuntime.stream_chat`); otherwise the one loaded."""
    names = [collection] if isinstance(collection, str) else list(collection)
    label = "”, “".join(names)  # shown inside “…”
    result = _search_all(library, names, question)
    if not result.hits and documents_only:
        yield NothingRelevant(
            label,
            (
                f"I found nothing in “{label}” relevant to this question, so I will not "
                "guess. Try other words, or add the documents that cover it."
            ),
        )
        return
    loaded = runtime.loaded
    params = model or (loaded.params if loaded is not None else None)
    context_length = params.context_length if params is not None else 4096
    request, sources = build_request(
        question,
        result.hits,
        history=history,
        system=system,
        sampling=sampling,
        context_length=context_length,
        count_tokens=lambda req: runtime.count_tokens(req, model=model),
    )
    notes = list(result.notes)
    if not result.hits:
        notes.append(f"Nothing in “{label}” was relevant; the model answers on its own.")
    elif len(sources) < len(result.hits):
        notes.append(
            f"{len(result.hits) - len(sources)} passages left out to fit the context window."
        )
    yield Retrieved(label, sources, notes)
    # Strict: nothing is shown before it is checked; the answer comes as one piece with each
    # unsupported sentence marked, then Done (held back until then), then Grounded.
    strict = bool(sources) and bool(library.settings.get("documents.strict"))
    text: list[str] = []
    held: list[Any] = []
    for event in runtime.stream_chat(request, model=model):
        if isinstance(event, TextPiece):
            text.append(event.text)
        if strict and isinstance(event, TextPiece | Done):
            held.append(event)
            continue
        yield event
    checked = None
    if sources and text:
        try:
            checked = grounding.check(
                "".join(text), sources, lambda t: library.embed(t)[0], question=question
            )
            checked = dataclasses.replace(checked, small_model=_small(params))
        except Exception:  # the answer stands without its check; never lose it over one
            log.exception("grounding check failed")
    if strict:
        said = "".join(text)
        if said and checked is None:
            yield Notice("This answer could not be checked against the sources.")
        if said:
            yield TextPiece(grounding.mark(said, checked) if checked else said)
        yield from (e for e in held if isinstance(e, Done))
    if checked is not None:
        yield Grounded(checked)


def _search_all(library: Documents, names: list[str], question: str) -> SearchResult:
    if len(names) == 1:
        return library.search(names[0], question)
    results = [library.search(n, question) for n in names]
    top_k = library.settings.get("documents.top_k")
    hits = sorted((h for r in results for h in r.hits), key=lambda h: -h.score)[:top_k]
    return SearchResult(
        hits, results[0].mode if results else "hybrid", [note for r in results for note in r.notes]
    )


def _small(params: LoadParams | None) -> bool:
    try:
        # A model on a server: its size is not known here, so its answers are not treated
        # as a small model's.
        return (
            params is not None
            and not params.remote
            and os.path.getsize(params.model_path) < (grounding.SMALL_MODEL_BYTES)
        )
    except OSError:
        return False
