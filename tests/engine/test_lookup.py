"""Drafts from the prompt (engine/runtime/lookup.py): what is guessed, and when guessing stops.
Whether drafting changes the output is tested on the real model in test_runtime.py."""

from __future__ import annotations

from engine.runtime.lookup import WINDOW, PromptLookup


def test_the_tokens_after_the_latest_earlier_match_of_the_tail_are_guessed() -> None:
    lookup = PromptLookup([1, 2, 3, 4, 5, 6, 9, 2, 3, 7, 8], max_draft=3)
    assert lookup.draft() == []  # tail (7, 8) never seen before
    lookup.add(2)
    lookup.add(3)  # tail (2, 3): seen twice; the latest was followed by 7, 8, 2
    assert lookup.draft() == [7, 8, 2]
    lookup.add(5)  # tail (3, 5): unseen; the bigram fallback has none either
    assert lookup.draft() == []


def test_the_tail_is_not_found_in_itself() -> None:
    lookup = PromptLookup([5, 6, 7])
    assert lookup.draft() == []


def test_guessing_stops_when_guesses_keep_failing_and_goes_on_when_they_hold() -> None:
    holding = PromptLookup([1, 2, 3, 1, 2], max_draft=4)
    for _ in range(WINDOW * 2):
        holding.judge(4, 3)
    assert holding.enabled and holding.draft() == [3, 1, 2]
    failing = PromptLookup([1, 2, 3, 1, 2], max_draft=4)
    for _ in range(WINDOW):
        failing.judge(4, 0)
    assert not failing.enabled and failing.draft() == []
    assert (failing.drafted, failing.accepted) == (4 * WINDOW, 0)


def test_a_draft_of_zero_tokens_means_plain_decoding() -> None:
    assert PromptLookup([1, 2, 1], max_draft=0).draft() == []
