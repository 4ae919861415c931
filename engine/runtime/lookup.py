"""Draft tokens copied from the prompt and the answer so far (prompt lookup decoding).

Document answers quote their passages and edits repeat their input, so the tokens that come
next have often been seen already: after the last few tokens, the ones that followed the same
few tokens earlier are a good guess. The worker evaluates the guess in one batch with the token
just sampled and keeps the longest run the model itself samples (`worker._generate`), so the
output is what plain decoding gives: the same at temperature 0, the same distribution when
sampling, since every kept token is sampled from the model's own distribution at its place.

A failed guess costs a batch of a few tokens instead of one. `PromptLookup` therefore stops
guessing for the rest of an answer once guesses keep failing (free chat seldom repeats).
"""

from __future__ import annotations

from collections import deque

NGRAMS = (3, 2)  # the longest match first: more context, better guesses
MAX_DRAFT = 8
WINDOW = 8  # recent guesses judged
MIN_ACCEPTED = 0.25  # of the tokens guessed over the window, below which guessing stops


class PromptLookup:
    """Index of the n-grams in `tokens` (the prompt); feed it each token kept, ask it for a
    draft after each. O(1) per token: the last position of every n-gram is kept in a dict."""

    def __init__(self, tokens: list[int], max_draft: int = MAX_DRAFT) -> None:
        self.tokens: list[int] = []
        self.max_draft = max_draft
        self._last: dict[tuple[int, ...], int] = {}  # n-gram -> index just after it
        self._recent: deque[tuple[int, int]] = deque(maxlen=WINDOW)  # (guessed, kept)
        self.enabled = max_draft > 0
        self.drafted = 0
        self.accepted = 0
        for token in tokens:
            self.add(token)

    def add(self, token: int) -> None:
        """Append a kept token. The n-grams ending before it are indexed now, so a lookup
        of the tail never finds the tail itself."""
        tokens = self.tokens
        for n in NGRAMS:
            if len(tokens) >= n:
                self._last[tuple(tokens[-n:])] = len(tokens)
        tokens.append(token)

    def draft(self) -> list[int]:
        """Up to `max_draft` tokens that followed the latest earlier occurrence of the tail."""
        if not self.enabled:
            return []
        tokens = self.tokens
        for n in NGRAMS:
            if len(tokens) < n:
                continue
            at = self._last.get(tuple(tokens[-n:]))
            if at is not None and at < len(tokens):
                return tokens[at : at + self.max_draft]
        return []

    def judge(self, guessed: int, kept: int) -> None:
        """How a draft fared; guessing stops for this answer when too few are kept."""
        self.drafted += guessed
        self.accepted += kept
        self._recent.append((guessed, kept))
        if len(self._recent) == WINDOW:
            total = sum(g for g, _ in self._recent)
            if total and sum(k for _, k in self._recent) / total < MIN_ACCEPTED:
                self.enabled = False
