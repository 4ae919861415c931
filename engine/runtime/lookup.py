"""Draft tokens copied from the prompt and the answer so far (prompt lookup decoding).

Document answers quote their passages and edits repeat their input, so the tokens that come
next have often been seen already: after the last few tokens, the ones that followed the same
few tokens earlier are a good guess. The worker evaluates the guess in one batch with the token
just sampled and keeps the longest run the model itself samples (`worker._generate`), so the
output is what plain decoding gives: the same at temperature 0, the same distribution when
sampling, since every kept token is sampled from the model's own distribution at its place.

A guess is not free: the batch costs more than one token, by an amount that depends on the
machine and the model (on 2 CPU cores with the bundled 135M model, 9 tokens cost 5x one:
compute-bound; a larger model on a GPU is bound by memory and pays far less). So the length
of each guess is chosen by cost: the worker times its plain steps and its batches, the share
of guessed tokens the model keeps is tracked, and a guess is made only as long as its expected
kept tokens per second beat a plain step's; guessing stops for the rest of an answer once
guesses keep failing (free chat seldom repeats). A short probe now and then keeps the kept
share current while guessing does not pay.
"""

from __future__ import annotations

from collections import deque

NGRAMS = (3, 2)  # the longest match first: more context, better guesses
MAX_DRAFT = 8
WINDOW = 8  # recent guesses judged
MIN_ACCEPTED = 0.25  # of the tokens guessed over the window, below which guessing stops
PROBE_EVERY = 24  # plain steps between probes while guessing does not pay
PROBE_LENGTH = 2


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
        self.keep_rate = 0.6  # a guessed token's chance to be kept, until measured
        self.step_s: float | None = None  # a plain step's time, as measured
        self.extra_s: float | None = None  # each more token in a batch
        self._since_guess = 0
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

    def timed(self, tokens: int, seconds: float) -> None:
        """The time a decode of `tokens` tokens took (the worker's measure of its costs)."""
        if tokens == 1:
            self.step_s = seconds if self.step_s is None else 0.8 * self.step_s + 0.2 * seconds
        elif self.step_s is not None:
            extra = max(0.0, (seconds - self.step_s) / (tokens - 1))
            self.extra_s = extra if self.extra_s is None else 0.8 * self.extra_s + 0.2 * extra

    def length(self) -> int:
        """How many tokens to guess now: the length with the most expected tokens per second,
        if that beats a plain step; else none, but a short probe now and then."""
        if self.step_s is None or self.extra_s is None:
            return self.max_draft if self.step_s is not None else 0  # measure both first
        best, best_rate = 0, 1.0 / self.step_s
        expected = 1.0
        for k in range(1, self.max_draft + 1):
            expected += self.keep_rate**k
            rate = expected / (self.step_s + self.extra_s * k)
            if rate > best_rate * 1.02:  # a clear gain only
                best, best_rate = k, rate
        if best == 0:
            self._since_guess += 1
            if self._since_guess >= PROBE_EVERY:
                self._since_guess = 0
                return min(PROBE_LENGTH, self.max_draft)
        return best

    def draft(self) -> list[int]:
        """The tokens that followed the latest earlier occurrence of the tail, as many as
        `length()` says pay (none while guessing is off or does not pay)."""
        if not self.enabled:
            return []
        wanted = self.length()
        if wanted == 0:
            return []
        tokens = self.tokens
        for n in NGRAMS:
            if len(tokens) < n:
                continue
            at = self._last.get(tuple(tokens[-n:]))
            if at is not None and at < len(tokens):
                return tokens[at : at + wanted]
        return []

    def judge(self, guessed: int, kept: int) -> None:
        """How a draft fared; guessing stops for this answer when too few are kept."""
        self.drafted += guessed
        self.accepted += kept
        if guessed:
            # Kept tokens per place tried: a run of kept ones, then the miss (if any).
            tried = kept + (1 if kept < guessed else 0)
            self.keep_rate = 0.7 * self.keep_rate + 0.3 * (kept / tried)
        self._recent.append((guessed, kept))
        if len(self._recent) == WINDOW:
            total = sum(g for g, _ in self._recent)
            if total and sum(k for _, k in self._recent) / total < MIN_ACCEPTED:
                self.enabled = False
