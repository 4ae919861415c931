"""One turn of a stored chat: make sure the chat's model is loaded, save the question, answer
(from documents when the chat uses collections), and save the answer as it grows.

Everything is a generator of events, like the rest of the engine; the GUI runs it through its
one adapter and the tests drive it directly. The events, in order:

    Loading, ModelReady          only when the chat's model is not the one loaded
    Saved(user message)          committed before the model starts
    Saved(assistant message)     an empty "streaming" row, updated while the answer grows
    Retrieved | NothingRelevant  when the chat uses document collections
    TextPiece | Notice ...       the answer
    Done                         its stats
    Saved(assistant message)     the final row: done, stopped or failed

`stop()` ends the turn from any thread: before the model starts it ends without answering;
during the answer it stops the runtime, and the partial answer is kept as "stopped".
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any

from engine import answer_audit, models
from engine.chats import Chat, ChatStore, Message
from engine.documents.events import Grounded, NothingRelevant, Retrieved
from engine.errors import HearthError
from engine.paths import DataPaths
from engine.runtime import (
    ChatMessage,
    ChatRequest,
    Done,
    LoadedModel,
    LoadParams,
    ModelRuntime,
    SamplingParams,
    TextPiece,
)
from engine.settings import Settings

log = logging.getLogger(__name__)

SAVE_EVERY_S = 1.0  # how often a growing answer is written: what a kill can lose at most
SAMPLING_KEYS = tuple(f.name for f in dataclasses.fields(SamplingParams) if f.name != "stop")


@dataclass(frozen=True)
class Loading:
    model: str  # what is being loaded, for the header


@dataclass(frozen=True)
class ModelReady:
    loaded: LoadedModel
    name: str  # for people: "SmolLM2 135M Instruct (Q4_1)"


@dataclass(frozen=True)
class Saved:
    message: Message


class Conversations:
    """Turns for chats in `store`, answered by `runtime`. `documents` returns the documents
    service and is only called for chats that use collections (it loads torch)."""

    def __init__(
        self,
        store: ChatStore,
        runtime: ModelRuntime,
        settings: Settings,
        paths: DataPaths,
        documents: Callable[[], Any],
    ) -> None:
        self.store = store
        self.runtime = runtime
        self.settings = settings
        self.paths = paths
        self._documents = documents
        self._stop = threading.Event()

    # -- what a chat runs with ------------------------------------------------------------

    def model_id(self, chat: Chat) -> str:
        return chat.model or self.settings.get("model.default")

    def load_params(self, chat: Chat) -> LoadParams:
        return models.load_params(self.model_id(chat), self.settings, self.paths, accept_paths=True)

    def answer_settings(self, chat: Chat) -> tuple[SamplingParams, str]:
        """Sampling and system prompt for the chat's next answer: the model's recommendation
        under the user's settings (`models.answer_defaults`), then the chat's own values."""
        sampling, system, _ = models.answer_defaults(self.model_id(chat), self.settings, self.paths)
        overrides = {k: v for k, v in chat.sampling.items() if k in SAMPLING_KEYS}
        system = chat.system_prompt if chat.system_prompt is not None else system
        return dataclasses.replace(sampling, **overrides), system

    # -- turns -----------------------------------------------------------------------------

    def ensure_loaded(self, chat: Chat) -> Generator[Loading | ModelReady, None, LoadParams]:
        """Load the chat's model unless it is the one loaded, with the same parameters; the
        generator returns those parameters, for the answer to name its model with."""
        params = self.load_params(chat)
        if self.runtime.holds(params):
            return params
        name = models.display_name(self.model_id(chat))
        yield Loading(name)
        yield ModelReady(self.runtime.load(params), name)
        return params

    def send(self, chat_id: int, text: str) -> Iterator[Any]:
        """Save `text` as the user's next message and answer it."""
        text = text.strip()
        if not text:
            raise HearthError("There is nothing to send.")
        self._stop.clear()
        chat = self.store.chat(chat_id)
        params = yield from self.ensure_loaded(chat)
        yield Saved(self.store.add_message(chat_id, "user", text))
        yield from self._answer(chat, params)

    def regenerate(self, chat_id: int) -> Iterator[Any]:
        """Answer the last question again, replacing the answer after it."""
        self._stop.clear()
        chat = self.store.chat(chat_id)
        msgs = self.store.messages(chat_id)
        last_user = next((m for m in reversed(msgs) if m.role == "user"), None)
        if last_user is None:
            raise HearthError("There is no question to answer again.")
        after = [m for m in msgs if m.seq > last_user.seq]
        if after:
            self.store.delete_from(after[0].id)
        params = yield from self.ensure_loaded(chat)
        yield from self._answer(chat, params)

    def edit_and_resend(self, message_id: int, text: str) -> Iterator[Any]:
        """Replace one of the user's messages (and everything after it) and answer anew."""
        msg = self.store.message(message_id)
        if msg.role != "user":
            raise HearthError("Only your own messages can be edited.")
        self.store.delete_from(message_id)
        yield from self.send(msg.chat_id, text)

    def stop(self) -> None:
        """End the current turn. Safe from any thread."""
        self._stop.set()
        self.runtime.stop()

    # -- the answer ------------------------------------------------------------------------

    def _answer(self, chat: Chat, params: LoadParams) -> Iterator[Any]:
        # The request names its model (`params`, from ensure_loaded): the API server shares
        # the runtime and may have loaded another model since.
        msgs = self.store.messages(chat.id)
        question = msgs[-1]
        history = tuple(
            ChatMessage(m.role, m.content)
            for m in msgs[:-1]
            if m.content and m.status in ("done", "stopped", "interrupted")
        )
        model_name = models.display_name(self.model_id(chat))
        answer = self.store.add_message(
            chat.id, "assistant", "", status="streaming", model=model_name
        )
        yield Saved(answer)
        sampling, system = self.answer_settings(chat)
        parts: list[str] = []
        saved_at = time.monotonic()
        status = "failed"
        stats: dict[str, Any] | None = None
        try:
            events: Iterator[Any]
            if self._stop.is_set():  # stopped while the model was loading: no answer
                events = iter(())
            elif chat.collections:
                from engine.documents.answer import answer as grounded

                events = grounded(
                    self.runtime,
                    self._documents(),
                    list(chat.collections),
                    question.content,
                    sampling=sampling,
                    system=system,
                    history=history,
                    documents_only=chat.documents_only,
                    model=params,
                )
            else:
                events = self.runtime.stream_chat(
                    ChatRequest(
                        (*history, ChatMessage("user", question.content)), sampling, system
                    ),
                    model=params,
                )
            status = "stopped"  # until a Done says otherwise
            for event in events:
                if self._stop.is_set():
                    self.runtime.stop()  # again: a stop may have come before the request
                match event:
                    case Retrieved():
                        self.store.update_message(
                            answer.id,
                            sources=[s.as_dict() for s in event.sources],
                            notes=list(event.notes),
                        )
                    case Grounded():
                        self.store.update_message(answer.id, grounding=event.grounding.as_dict())
                    case NothingRelevant():
                        parts.append(event.message)
                        status = "done"
                    case TextPiece():
                        parts.append(event.text)
                        if time.monotonic() - saved_at >= SAVE_EVERY_S:
                            self.store.update_message(answer.id, content="".join(parts))
                            saved_at = time.monotonic()
                    case Done():
                        stats = event.stats.as_dict()
                        status = "stopped" if event.stats.stop_reason == "cancelled" else "done"
                yield event
        finally:
            self.store.update_message(answer.id, content="".join(parts), status=status, stats=stats)
            final = self.store.message(answer.id)
            log.info("answer %d saved: %s, %d characters", answer.id, status, len(final.content))
            answer_audit.record_answer(
                self.paths,
                via="chat",
                model=self.model_id(chat),
                status=status,
                question=question.content,
                answer=final.content,
                collections=chat.collections,
                sources=final.sources,
                sampling=dataclasses.asdict(sampling),
                chat_id=chat.id,
                message_id=answer.id,
            )
        yield Saved(final)
