"""What document work reports, as plain data: indexing progress and the first events of an
answer from documents. Kept apart from the work itself so that the window and the API can tell
events apart by type without importing numpy, torch or chromadb."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.documents.grounding import Grounding
    from engine.documents.prompting import Source


@dataclass(frozen=True)
class IndexProgress:
    phase: str  # "scanning", "reading", "vectors"; "publishing", "downloading" (shared.py)
    files_done: int
    files_total: int
    chunks: int
    chunks_per_s: float
    eta_s: float | None
    current: str | None = None
    detail: str | None = None  # how far the current file is, when reading it is long (OCR)


@dataclass(frozen=True)
class IndexDone:
    collection: str
    scanned: int
    unchanged: int
    indexed: int
    skipped: int
    failed: int
    removed: int
    chunks_added: int
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)  # the whole collection afterwards
    notes: list[str] = field(default_factory=list)
    reembedded: int = 0  # passages given vectors from the collection's new embedder first


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


@dataclass(frozen=True)
class Grounded:
    """Last event of a grounded answer, after the runtime's Done: each sentence of the answer
    checked against the sources it was given."""

    grounding: Grounding


@dataclass(frozen=True)
class Published:
    """Last event of publishing a collection to a Chroma server (documents/shared.py)."""

    collection: str
    server: str  # the server's URL
    remote_name: str  # the collection's name on the server
    passages: int  # the server's collection holds this many, all from this collection
    removed: int  # passages the server had that this collection no longer has
    seconds: float
