"""What the API serves, with the app's own services: the one model runtime (shared with the
window, so a request waits its turn instead of loading a second copy), the documents service
and the bundled embedder.

Model ids are those of `hearth models list`; only installed models can be named, never a path.
"docs/NAME" is an alias: the loaded model (or the default one) answering from the collection
NAME, with the sources returned beside the answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator
from dataclasses import asdict, dataclass, replace
from typing import Any

from engine import models
from engine.api import protocol
from engine.api.protocol import COLLECTION_PREFIX, ApiError, ChatCall, CompletionCall
from engine.errors import ModelNotFound
from engine.paths import DataPaths
from engine.runtime import ChatMessage, ChatRequest, LoadParams, ModelRuntime, SamplingParams
from engine.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recorded:
    """Last event of an answer from documents: its record (engine.answer_record's format),
    linked to its line in the answers' audit trail; `hearth record verify` checks it."""

    record: dict[str, Any]


@dataclass(frozen=True)
class Job:
    """A checked request, ready to run when its turn comes: `run()` yields engine events
    (for collections: Retrieved or NothingRelevant first)."""

    model: str  # as the caller named it, echoed in responses
    run: Callable[[], Generator[Any, None, None]]  # closed early if the client leaves


class Backend:
    """Turns parsed API calls into engine work. Thread-safe; the runtime serialises answers."""

    def __init__(
        self,
        runtime: ModelRuntime,
        settings: Settings,
        paths: DataPaths,
        documents: Callable[[], Any],
    ) -> None:
        self.runtime = runtime
        self.settings = settings
        self.paths = paths
        self._documents = documents  # called only when a request needs documents

    # -- /v1/models ------------------------------------------------------------------------

    def models(self) -> list[dict[str, Any]]:
        loaded = self.runtime.loaded
        out = []
        for m in models.installed(self.paths):
            if m.problem is not None:
                continue
            out.append(
                protocol.model_entry(
                    m.id,
                    _mtime(m.path),
                    kind="chat",
                    name=models.display_name(m.id),
                    loaded=loaded is not None and loaded.params.model_path == str(m.path),
                )
            )
        from engine import remote

        for r, checked in remote.usable(self.settings, self.paths):  # as last asked: no request
            out.append(
                protocol.model_entry(
                    r.id,
                    int(checked),
                    kind="chat",
                    name=r.name,
                    loaded=loaded is not None and loaded.params.model_path == r.id,
                )
            )
        embedder = models.BUNDLED_EMBEDDER
        out.append(
            protocol.model_entry(
                embedder.id, _mtime(embedder.path()), kind="embedding", name=embedder.name
            )
        )
        for col in self._documents().collections():
            out.append(
                protocol.model_entry(
                    COLLECTION_PREFIX + col.name,
                    0,
                    kind="collection",
                    name=f"Documents: {col.name}",
                    # the files that answer (indexed), and their passages
                    documents=col.counts.get("indexed", 0),
                    passages=col.counts.get("chunks", 0),
                )
            )
        return out

    # -- chat and completions ----------------------------------------------------------------

    def prepare_chat(self, call: ChatCall) -> Job:
        """Check the model, the collections and the sampling now (errors before queueing)."""
        params = self.load_params(None if call.model.startswith(COLLECTION_PREFIX) else call.model)
        sampling, default_system = self._answer_defaults(params, call.sampling)
        if not call.collections:
            # A request without a system message gets the one the window would use.
            request = ChatRequest(call.messages, sampling, system_prompt=default_system)
            return Job(call.model, lambda: self.runtime.stream_chat(request, model=params))
        library = self._documents()
        for name in call.collections:
            library.info(name)  # CollectionNotFound now, not after the wait
        system = "\n\n".join(m.content for m in call.messages if m.role == "system")
        system = system or default_system
        turns = [m for m in call.messages if m.role != "system"]
        history = tuple(ChatMessage(m.role, m.content) for m in turns[:-1])

        def run() -> Generator[Any, None, None]:
            from engine.documents.answer import answer
            from engine.documents.events import Grounded, Retrieved
            from engine.runtime import Done, TextPiece

            text: list[str] = []
            sources: list[dict[str, Any]] = []
            checked: dict[str, Any] | None = None
            status = "stopped"
            asked = time.time()
            for event in answer(
                self.runtime,
                library,
                list(call.collections),
                turns[-1].content,
                sampling=sampling,
                system=system,
                history=history,
                documents_only=call.documents_only,
                model=params,
            ):
                if isinstance(event, Retrieved):
                    sources = [s.as_dict() for s in event.sources]
                elif isinstance(event, TextPiece):
                    text.append(event.text)
                elif isinstance(event, Grounded):
                    checked = event.grounding.as_dict()
                elif isinstance(event, Done):
                    status = "stopped" if event.stats.stop_reason == "cancelled" else "done"
                yield event
            yield self._record(
                call,
                params,
                turns[-1].content,
                asked,
                "".join(text),
                status,
                sources,
                checked,
                sampling,
            )

        return Job(call.model, run)

    def _record(
        self,
        call: ChatCall,
        params: LoadParams,
        question: str,
        asked: float,
        text: str,
        status: str,
        sources: list[dict[str, Any]],
        checked: dict[str, Any] | None,
        sampling: SamplingParams,
    ) -> Recorded:
        """Chain the answer in the audit trail, as the window's are, and give its record."""
        from engine import answer_audit, answer_record, audit

        model_id = next(
            (m.id for m in models.installed(self.paths) if str(m.path) == params.model_path),
            params.model_path,
        )
        audited = answer_audit.record_answer(
            self.paths,
            via="api",
            model=model_id,
            status=status,
            question=question,
            answer=text,
            collections=call.collections,
            sources=sources,
            sampling=asdict(sampling),
        )
        return Recorded(
            answer_record.compose(
                question=question,
                asked=asked,
                answer=text,
                status=status,
                sources=sources,
                grounding=checked,
                model_name=models.display_name(model_id),
                audited=audited,
                line=audit.encode(audited) if audited else None,
            )
        )

    def prepare_completion(self, call: CompletionCall) -> Job:
        params = self.load_params(call.model)
        sampling, _system = self._answer_defaults(params, call.sampling)
        request = ChatRequest((), sampling, raw_prompt=call.prompt)
        return Job(call.model, lambda: self.runtime.stream_chat(request, model=params))

    # -- /v1/embeddings -----------------------------------------------------------------------

    def embed(self, call: protocol.EmbeddingCall) -> dict[str, Any]:
        if call.model != models.BUNDLED_EMBEDDER.id:
            raise ApiError(
                404,
                f"“{call.model}” is not an embedding model here; use "
                f"“{models.BUNDLED_EMBEDDER.id}”.",
                param="model",
                code="model_not_found",
            )
        vectors, tokens = self._documents().embed(list(call.inputs))
        return protocol.embeddings_response(call.model, vectors, call.encoding, tokens)

    # -- helpers -------------------------------------------------------------------------------

    def load_params(self, model_id: str | None) -> LoadParams:
        """Load parameters for an installed model id (never a path: only what clients can
        name); None: the loaded model, else the default one."""
        loaded = self.runtime.loaded
        if model_id is None:
            if loaded is not None:
                return loaded.params
            model_id = str(self.settings.get("model.default"))
        # An id alone, never a path: only what clients can name. Looked up without validating
        # every installed file (that would cost each request tens of milliseconds); a file
        # that is not a usable model fails when it is loaded.
        try:
            params = models.load_params(model_id, self.settings, self.paths)
        except ModelNotFound:
            raise ModelNotFound(
                f"There is no model “{model_id}” here. GET /v1/models lists "
                "what this server offers."
            ) from None
        if loaded is not None and loaded.params.model_path == params.model_path:
            return loaded.params  # as loaded, even if settings changed since
        if loaded is not None and not self.settings.get("api.load_models"):
            raise ApiError(
                409,
                f"The model “{model_id}” is not loaded, and loading models "
                "from the API is turned off (setting api.load_models).",
                param="model",
                code="model_not_loaded",
            )
        return params

    def _answer_defaults(
        self, params: LoadParams, overrides: dict[str, Any]
    ) -> tuple[SamplingParams, str]:
        """As the window answers with this model (its recommendation under the user's
        settings), with what the request set on top; and the system prompt for a request
        that sends none."""
        sampling, system, _ = models.answer_defaults(params.model_path, self.settings, self.paths)
        return replace(sampling, **overrides), system


def _mtime(path: Any) -> int:
    try:
        return int(path.stat().st_mtime)
    except OSError:
        return 0
