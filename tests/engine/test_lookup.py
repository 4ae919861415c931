"""Drafts from the prompt (engine/runtime/lookup.py): what is guessed, how long a guess is
worth making on a machine's measured costs, and when guessing stops. Whether drafting changes
the output is tested on the real model in test_runtime.py."""

from __future__ import annotations

from engine.runtime.lookup import PROBE_EVERY, PROBE_LENGTH, WINDOW, PromptLookup


def cheap_batches(lookup: PromptLookup) -> PromptLookup:
    """Costs as on a GPU: a batch of 9 costs little more than one token."""
    lookup.timed(1, 0.010)
    lookup.timed(9, 0.012)
    return lookup


def test_the_tokens_after_the_latest_earlier_match_of_the_tail_are_guessed() -> None:
    lookup = cheap_batches(PromptLookup([1, 2, 3, 4, 5, 6, 9, 2, 3, 7, 8], max_draft=3))
    assert lookup.draft() == []  # tail (7, 8) never seen before
    lookup.add(2)
    lookup.add(3)  # tail (2, 3): seen twice; the latest was followed by 7, 8, 2
    assert lookup.draft() == [7, 8, 2]
    lookup.add(5)  # tail (3, 5): unseen; the bigram fallback has none either
    assert lookup.draft() == []


def test_the_tail_is_not_found_in_itself() -> None:
    assert cheap_batches(PromptLookup([5, 6, 7])).draft() == []


def test_nothing_is_guessed_before_a_plain_step_was_timed() -> None:
    lookup = PromptLookup([1, 2, 3, 1, 2], max_draft=4)
    assert lookup.draft() == []
    lookup.timed(1, 0.01)
    assert lookup.draft() == [3, 1, 2]  # then a full guess, to time a batch


def test_guesses_are_as_long_as_the_measured_costs_pay_for() -> None:
    costly = PromptLookup([1, 2, 3, 1, 2], max_draft=8)
    costly.timed(1, 0.014)
    costly.timed(9, 0.067)  # measured here on 2 cores: 9 tokens cost about 5 plain steps
    costly.keep_rate = 0.2
    assert costly.length() == 0  # a loss: plain decoding
    probes = [costly.length() for _ in range(PROBE_EVERY)]
    assert probes.count(PROBE_LENGTH) == 1 and probes.count(0) == PROBE_EVERY - 1  # now and then
    costly.keep_rate = 0.95
    assert 1 <= costly.length() <= 8  # a quote being copied pays even here
    cheap = cheap_batches(PromptLookup([1, 2, 3, 1, 2], max_draft=8))
    cheap.keep_rate = costly.keep_rate = 0.8
    assert cheap.length() > costly.length()  # the same odds, cheaper batches: longer guesses


def test_guessing_stops_when_guesses_keep_failing_and_goes_on_when_they_hold() -> None:
    holding = cheap_batches(PromptLookup([1, 2, 3, 1, 2], max_draft=4))
    for _ in range(WINDOW * 2):
        holding.judge(4, 3)
    assert holding.enabled and holding.draft() == [3, 1, 2]
    failing = cheap_batches(PromptLookup([1, 2, 3, 1, 2], max_draft=4))
    for _ in range(WINDOW):
        failing.judge(4, 0)
    assert not failing.enabled and failing.draft() == []
    assert (failing.drafted, failing.accepted) == (4 * WINDOW, 0)


def test_a_draft_of_zero_tokens_means_plain_decoding() -> None:
    assert cheap_batches(PromptLookup([1, 2, 1], max_draft=0)).draft() == []
