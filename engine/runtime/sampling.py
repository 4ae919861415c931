"""Choosing each next token, with as little work per token as the choice allows. Worker side.

llama.cpp's own chain does more than most choices need, and it runs once per token:
- `llama_sampler_sample` copies the whole vocabulary into a candidate array before any
  sampler looks at it; for greedy decoding that copy is most of the cost (118 us a token here
  against 11 us for an argmax over the logits, 49,152 tokens).
- Its repetition penalty looks every candidate up in a hash map of the recent tokens (about
  140 us a token here); only the up to 64 recent tokens can change, so they are changed
  directly in the logits, where every later sampler reads them.
Both give the very tokens the chain gives (tests/engine/test_sampling.py decodes with both).
The frequency and presence penalties stay in llama.cpp's chain: C++ may fuse their
multiply-add, and matching its rounding is not worth their rare use.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Any

import numpy as np

from engine.runtime.grammar_sampler import GrammarSampler
from engine.runtime.params import SamplingParams

PENALTY_LAST_N = 64  # recent tokens the repetition penalty looks at


class RepeatPenalty:
    """llama.cpp's repetition penalty (`llama_sampler_init_penalties` with no frequency or
    presence part), applied in place to the recent tokens' logits: a positive logit is divided
    by the penalty, any other multiplied, in float32 as llama.cpp does."""

    def __init__(self, penalty: float, last_n: int = PENALTY_LAST_N) -> None:
        self.penalty = np.float32(penalty)
        self._recent: deque[int] = deque(maxlen=last_n)
        self._counts: Counter[int] = Counter()

    def apply(self, logits: np.ndarray) -> None:
        if not self._counts:
            return
        ids = np.fromiter(self._counts, dtype=np.int64, count=len(self._counts))
        values = logits[ids]
        logits[ids] = np.where(values <= 0, values * self.penalty, values / self.penalty)

    def accept(self, token: int) -> None:
        recent = self._recent
        if len(recent) == recent.maxlen:
            old = recent[0]
            self._counts[old] -= 1
            if not self._counts[old]:
                del self._counts[old]
        recent.append(token)
        self._counts[token] += 1


class TokenPicker:
    """The next token at a batch index, as `sampling` asks; owns its llama.cpp samplers."""

    def __init__(
        self, llama_cpp: Any, ctx: Any, vocab: Any, sampling: SamplingParams, grammar: str | None
    ) -> None:
        self._ll = llama_cpp
        self._ctx = ctx
        self._n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
        fused = bool(sampling.frequency_penalty or sampling.presence_penalty)
        self.penalty: RepeatPenalty | None = None
        if sampling.repeat_penalty != 1.0 and not fused:
            self.penalty = RepeatPenalty(sampling.repeat_penalty)
        self._chain = llama_chain(llama_cpp, self._n_vocab, sampling, with_penalties=fused)
        self.constrained: GrammarSampler | None = None
        if grammar is not None:
            try:
                self.constrained = GrammarSampler(llama_cpp, ctx, vocab, self._chain, grammar)
            except Exception:
                llama_cpp.llama_sampler_free(self._chain)
                raise
        # The argmax needs nothing from the chain only when the chain holds nothing else.
        self._argmax = sampling.temperature <= 0 and not fused and self.constrained is None

    def pick(self, index: int) -> int:
        """Sample at `index` of the last batch (-1: its last output) and accept the token."""
        ll = self._ll
        if self.penalty is not None or self._argmax:
            logits = np.ctypeslib.as_array(
                ll.llama_get_logits_ith(self._ctx, index), shape=(self._n_vocab,)
            )
            if self.penalty is not None:
                self.penalty.apply(logits)
        if self.constrained is not None:
            token = self.constrained.sample()
        elif self._argmax:
            token = int(logits.argmax())  # the first of equal maxima, as llama.cpp's greedy
        else:
            token = int(ll.llama_sampler_sample(self._chain, self._ctx, index))
        if self.penalty is not None:
            self.penalty.accept(token)
        return token

    def free(self) -> None:
        if self.constrained is not None:
            self.constrained.free()
        self._ll.llama_sampler_free(self._chain)


def llama_chain(
    llama_cpp: Any, n_vocab: int, sampling: SamplingParams, *, with_penalties: bool
) -> Any:
    """llama.cpp's sampler chain for `sampling`; the penalties in it only `with_penalties`
    (with them, it is the whole choice inside llama.cpp, as the worker made it before
    TokenPicker: the reference the tests and bench_token_costs compare with)."""
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    add = llama_cpp.llama_sampler_chain_add
    if with_penalties:
        add(
            chain,
            llama_cpp.llama_sampler_init_penalties(
                n_vocab,
                PENALTY_LAST_N,
                sampling.repeat_penalty,
                sampling.frequency_penalty,
                sampling.presence_penalty,
            ),
        )
    if sampling.temperature <= 0:
        add(chain, llama_cpp.llama_sampler_init_greedy())
        return chain
    if sampling.top_k > 0:
        add(chain, llama_cpp.llama_sampler_init_top_k(sampling.top_k))
    if sampling.top_p < 1.0:
        add(chain, llama_cpp.llama_sampler_init_top_p(sampling.top_p, 1))
    if sampling.min_p > 0.0:
        add(chain, llama_cpp.llama_sampler_init_min_p(sampling.min_p, 1))
    add(chain, llama_cpp.llama_sampler_init_temp(sampling.temperature))
    seed = llama_cpp.LLAMA_DEFAULT_SEED if sampling.seed < 0 else sampling.seed
    add(chain, llama_cpp.llama_sampler_init_dist(seed))
    return chain
