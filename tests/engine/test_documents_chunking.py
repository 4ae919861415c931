"""Chunks fit the real embedder's 256 word pieces, overlap, and keep page and heading."""

from __future__ import annotations

import itertools
import random

import pytest

from engine.documents.chunking import chunk_text
from engine.documents.embedder import MAX_SEQ_TOKENS, Embedder


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


def prose(n_sentences: int, seed: int = 1) -> str:
    rng = random.Random(seed)
    words = [
        "the",
        "council",
        "approved",
        "budget",
        "records",
        "nurse",
        "patient",
        "invoice",
        "ledger",
        "clause",
        "tribunal",
        "dosage",
        "appendix",
        "hydrogenation",
        "électricité",
        "naïve",
        "4471",
        "XJ-9",
        "anticonstitutionnellement",
    ]
    sentences = []
    for _ in range(n_sentences):
        sentences.append(" ".join(rng.choice(words) for _ in range(rng.randint(5, 25))) + ".")
    return " ".join(sentences)


def test_every_chunk_fits_the_model_with_its_markers(embedder: Embedder) -> None:
    text = "\n\n".join(prose(30, seed) for seed in range(8))
    chunks = chunk_text(text, [], [], embedder.tokenizer, max_tokens=254, overlap=40)
    assert len(chunks) > 5
    for c in chunks:
        assert c.text == text[c.char_start : c.char_end]
        assert embedder.count_tokens(c.text) <= MAX_SEQ_TOKENS
        assert c.tokens == embedder.count_tokens(c.text) - 2


def test_chunks_overlap_and_cover_the_whole_text(embedder: Embedder) -> None:
    text = prose(200)
    chunks = chunk_text(text, [], [], embedder.tokenizer, max_tokens=120, overlap=30)
    for a, b in itertools.pairwise(chunks):
        assert b.char_start < a.char_end, "consecutive chunks share text"
        assert b.char_start > a.char_start
    assert chunks[0].char_start == 0
    assert chunks[-1].char_end == len(text.rstrip())


def test_chunks_end_at_sentence_boundaries_when_they_can(embedder: Embedder) -> None:
    text = prose(120, seed=3)
    chunks = chunk_text(text, [], [], embedder.tokenizer, max_tokens=128, overlap=0)
    endings = [c.text.rstrip()[-1] for c in chunks[:-1]]
    assert sum(e == "." for e in endings) >= len(endings) - 1


def test_chunks_never_cross_pages_or_headings(embedder: Embedder) -> None:
    page1, page2 = prose(40, 1), prose(40, 2)
    text = page1 + "\n\n" + page2
    pages = [0, len(page1) + 2]
    headings = [(0, "Intro"), (len(page1) // 2, "Intro › Details")]
    chunks = chunk_text(text, pages, headings, embedder.tokenizer, max_tokens=200, overlap=40)
    for c in chunks:
        assert c.page == (1 if c.char_end <= len(page1) else 2)
        assert c.char_start >= pages[1] or c.char_end <= len(page1)
    assert {c.heading for c in chunks if c.page == 1} == {"Intro", "Intro › Details"}
    assert {c.heading for c in chunks if c.page == 2} == {"Intro › Details"}


def test_a_giant_unbroken_token_run_is_still_cut_to_size(embedder: Embedder) -> None:
    text = "a" * 20000
    chunks = chunk_text(text, [], [], embedder.tokenizer, max_tokens=100, overlap=10)
    assert chunks and all(embedder.count_tokens(c.text) <= 102 for c in chunks)


def test_lines_are_counted_from_one(embedder: Embedder) -> None:
    text = "first line\nsecond line\n\nfourth line has the answer"
    [chunk] = chunk_text(text, [], [], embedder.tokenizer, max_tokens=100, overlap=0)
    assert (chunk.line_start, chunk.line_end) == (1, 4)


def test_a_single_line_longer_than_a_window_is_chunked_in_stretches(
    embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 34: a 20 MB file that is one line was tokenized whole (2.5 GB resident). It is
    now tokenized a stretch at a time; the chunks still cover every word, in order, each
    fits the model, and the stretches are cut between words, never inside one."""
    from engine.documents import chunking

    monkeypatch.setattr(chunking, "WINDOW_CHARS", 5_000)  # the same code, small numbers
    text = prose(600, seed=5)  # about 60,000 characters, one line
    assert "\n" not in text and len(text) > 10 * chunking.WINDOW_CHARS
    chunks = chunk_text(text, [], [], embedder.tokenizer, max_tokens=200, overlap=40)
    stretches = list(chunking._windows(text, 0, len(text), chunking.WINDOW_CHARS))
    assert len(stretches) > 10
    for s0, s1 in stretches:
        assert s1 - s0 <= chunking.WINDOW_CHARS
        assert s1 == len(text) or text[s1 - 1] == " "  # cut after a space
    covered = [False] * len(text)
    for c in chunks:
        assert c.text == text[c.char_start : c.char_end]
        assert embedder.count_tokens(c.text) <= MAX_SEQ_TOKENS
        assert c.line_start == c.line_end == 1
        for i in range(c.char_start, c.char_end):
            covered[i] = True
    assert all(covered[i] for i, ch in enumerate(text) if not ch.isspace())
    assert [c.char_start for c in chunks] == sorted(c.char_start for c in chunks)
    # No stretch boundary inside a chunk.
    cuts = {s1 for _, s1 in stretches[:-1]}
    assert not any(c.char_start < cut < c.char_end for c in chunks for cut in cuts)
