"""The GUI's documents service: indexing and search in child processes, same results."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.documents.events import IndexDone, IndexProgress
from engine.documents.isolated import IsolatedLibrary
from engine.documents.library import DocumentLibrary
from engine.errors import CollectionNotFound
from engine.settings import Settings
from tests.app.test_cli_docs import make_docs


def test_sync_and_search_in_children_and_a_cancelled_sync_resumes(tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs")
    for i in range(40):
        (docs / f"note-{i:02}.txt").write_text(f"Note {i}. " + "Harbours shelter boats. " * 150)
    lib = IsolatedLibrary(DocumentLibrary(tmp_path / "store", Settings.load(None)))
    try:
        lib.create("work", [str(docs)])
        stream = lib.sync("work")
        seen = []
        for event in stream:
            seen.append(event)
            if (
                isinstance(event, IndexProgress)
                and event.phase == "reading"
                and event.files_done >= 5
            ):
                break
        stream.close()  # kills the child mid-sync
        assert lib.info("work").counts["indexed"] < 42  # stopped part-way
        events = list(lib.sync("work"))
        done = events[-1]
        assert isinstance(done, IndexDone) and done.counts["indexed"] == 42
        assert all(isinstance(e, IndexProgress) for e in events[:-1])

        result = lib.search("work", "What is the vault code word?")
        assert (Path(result.hits[0].path).name, result.hits[0].page) == ("report.pdf", 3)
        assert "PELICAN" in result.hits[0].text
        with pytest.raises(CollectionNotFound):
            lib.search("nope", "anything")
        assert lib.search("work", "hotel per night").hits  # the child survived the error
        lib.delete("work")
        assert lib.collections() == []
    finally:
        lib.close()


def test_embedding_in_the_child_gives_the_in_process_vectors(tmp_path: Path) -> None:
    from engine.errors import EmbeddingInputTooLong

    local = DocumentLibrary(tmp_path / "store", Settings.load(None))
    lib = IsolatedLibrary(local)
    try:
        texts = ["Harbours shelter boats.", "The vault code word is PELICAN."]
        vectors, tokens = lib.embed(texts)
        direct, direct_tokens = local.embed(texts)
        assert vectors.shape == (2, 384) and tokens == direct_tokens
        assert abs(vectors - direct).max() < 1e-6
        with pytest.raises(EmbeddingInputTooLong):  # the engine's error, across the process
            lib.embed(["word " * 400])
        assert lib.embed(["still serving"])[0].shape == (1, 384)
    finally:
        lib.close()
