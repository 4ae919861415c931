"""BM25 in the real SQLite store: stop words do not decide the ranking, and a collection whose
matches are crowded out by another collection's still gets its own best passages."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.documents.store import DocumentStore, NewChunk, fts_query


def chunk(seq: int, text: str) -> NewChunk:
    return NewChunk(seq, text, None, None, 0, len(text), 1, 1, len(text.split()))


def fill(store: DocumentStore, name: str, texts: list[str]) -> None:
    col = store.create_collection(name, "bundled:all-minilm-l6-v2", 200, 40)
    for i, text in enumerate(texts):
        store.replace_chunks(
            col,
            f"/{name}/{i}.txt",
            kind="text",
            size=len(text),
            mtime_ns=1,
            sha256=str(i),
            pages=None,
            reason=None,
            chunks=[chunk(0, text)],
            embeddings=np.zeros((1, 384), dtype=np.float32),
        )


def test_stop_words_are_left_out_unless_there_is_nothing_else() -> None:
    assert fts_query("How do I rotate the log files?") == '"rotate" OR "log" OR "files"'
    assert fts_query("What is it?") == '"what" OR "is" OR "it"'


def test_a_crowded_out_collection_still_gets_its_best_passages(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "documents.sqlite")
    # The big collection matches "vacuum" 400 times, and better (shorter passages).
    fill(store, "big", [f"vacuum {i}" for i in range(400)])
    fill(
        store,
        "small",
        [
            "Routine vacuum of the database reclaims storage held by dead rows, the manual says.",
            "The autovacuum daemon runs vacuum for you when enough rows have changed, mostly.",
            "Nothing here about that at all, only the weather and the garden and the roses.",
        ],
    )
    small = store.collection("small")
    hits = store.bm25(small, "when does vacuum run?", 5)
    paths = [store.chunks_by_id([i])[i].path for i, _ in hits]
    assert paths == ["/small/1.txt", "/small/0.txt"]
    big = store.bm25(store.collection("big"), "vacuum", 5)
    assert len(big) == 5
    store.close()
