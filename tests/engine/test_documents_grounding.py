"""The grounding check on the real embedder: sentences the sources back, sentences they do not,
numbers that changed, citations that point nowhere or at the wrong source. Its quality on a
labelled set nobody here wrote is measured in bench/bench_grounding.py, not here."""

from __future__ import annotations

import pytest

from engine import models
from engine.documents import grounding
from engine.documents.embedder import for_model

SOURCES = [
    {
        "n": 1,
        "quote": "The VACUUM command rebuilds the database file, repacking it into a minimal "
        "amount of disk space. VACUUM may need as much as twice the size of the original "
        "database file in free disk space.",
    },
    {
        "n": 2,
        "quote": "Foreign key constraints are disabled by default. They must be enabled for each "
        "database connection separately with PRAGMA foreign_keys = ON.",
    },
]


@pytest.fixture(scope="module")
def embed():  # type: ignore[no-untyped-def]
    return for_model(models.BUNDLED_EMBEDDER.id).embed


def verdicts(answer: str, embed) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(c.text, c.verdict) for c in grounding.check(answer, SOURCES, embed).sentences]


def test_each_sentence_gets_its_own_verdict_and_the_source_that_backs_it(embed) -> None:  # type: ignore[no-untyped-def]
    answer = (
        "VACUUM repacks the database file into a minimal amount of disk space. "
        "Foreign key constraints must be enabled for each connection with PRAGMA "
        "foreign_keys = ON. "
        "The Eiffel Tower was finished in 1889 for the World's Fair."
    )
    result = grounding.check(answer, SOURCES, embed)
    got = [(c.verdict, c.source) for c in result.sentences]
    assert got[0] == ("supported", 1)
    assert got[1] == ("supported", 2)
    assert got[2][0] == "unsupported"
    assert result.summary().startswith("2 of 3 sentences supported by the sources")
    first = result.sentences[0]
    assert answer[first.start : first.end] == first.text and "VACUUM" in (first.evidence or "")


def test_a_changed_number_is_not_supported(embed) -> None:  # type: ignore[no-untyped-def]
    ((_, verdict),) = verdicts(
        "VACUUM may need as much as 3 times the size of the original database in free disk space.",
        embed,
    )
    assert verdict != "supported"


def test_citations_that_point_nowhere_or_at_the_wrong_source_are_flagged(embed) -> None:  # type: ignore[no-untyped-def]
    result = grounding.check(
        "Foreign key constraints are disabled by default [1]. VACUUM rebuilds the database "
        "file [7].",
        SOURCES,
        embed,
    )
    wrong, missing = result.sentences
    assert wrong.cited == (1,) and wrong.citation_problem == "cites [1], but [2] is what backs it"
    assert missing.citation_problem == "[7] points to no source"
    assert "2 with a citation that does not fit" in result.summary()


def test_sentences_without_a_claim_are_not_counted(embed) -> None:  # type: ignore[no-untyped-def]
    result = grounding.check("Sure. Foreign key constraints are off by default.", SOURCES, embed)
    assert result.sentences[0].verdict == "none"
    assert sum(result.counts().values()) == 1
    assert grounding.check("Yes.", SOURCES, embed).summary().startswith("No sentence made")


def test_sentence_splitting_keeps_spans_and_list_items() -> None:
    text = "First point. Second one!\n- a list item\n- another item\n\nA new paragraph? Yes."
    parts = [text[a:b] for a, b in grounding.split_sentences(text)]
    assert parts == [
        "First point.",
        "Second one!",
        "- a list item",
        "- another item",
        "A new paragraph?",
        "Yes.",
    ]


def test_an_unbacked_answer_comes_with_the_source_sentences_that_answer_the_question(
    embed,  # type: ignore[no-untyped-def]
) -> None:
    result = grounding.check(
        "The moon is made of cheese, as everyone knows. Astronauts brought some back.",
        SOURCES,
        embed,
        question="Are foreign key constraints enforced by default?",
    )
    assert result.weak and result.counts()["supported"] == 0
    best = result.evidence[0]
    assert best.source == 2 and best.text == "Foreign key constraints are disabled by default."
    assert len({e.text for e in result.evidence}) == len(result.evidence) <= 3
    backed = grounding.check(
        "VACUUM repacks the database file into a minimal amount of disk space.",
        SOURCES,
        embed,
        question="What does VACUUM do?",
    )
    assert not backed.weak


def test_strict_marking_strikes_only_the_unsupported_sentences(embed) -> None:  # type: ignore[no-untyped-def]
    answer = (
        "VACUUM repacks the database file into a minimal amount of disk space. "
        "The Eiffel Tower was finished in 1889 for the World's Fair."
    )
    checked = grounding.check(answer, SOURCES, embed)
    assert grounding.mark(answer, checked) == (
        "VACUUM repacks the database file into a minimal amount of disk space. "
        "~~The Eiffel Tower was finished in 1889 for the World's Fair.~~ *(not in the sources)*"
    )
