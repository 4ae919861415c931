"""Sampling held to a grammar, at close to the speed of free sampling. Worker side only.

A grammar sampler first in the chain checks every token of the vocabulary at every step
(49,152 for the bundled model; 128k and more for larger ones): 5.6 ms a token here, half the
bundled model's decoding speed, against 0.4 ms this way (bench/bench_structured.py). This
does what llama.cpp's own common sampler does: sample freely,
ask the grammar about that one token, and only when it is refused sample again with the
grammar over the whole vocabulary. That is the same distribution: a token the grammar allows
is kept with its free probability p, and is also reached by the resample, together
p + P(refused) * p / P(allowed) = p / P(allowed), its probability under the grammar.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from engine.errors import SchemaRefused

_TOKEN_DATA = np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])  # llama_token_data


class GrammarSampler:
    """Owns the grammar sampler; `chain` (the free sampling chain) stays the caller's."""

    def __init__(self, llama_cpp: Any, ctx: Any, vocab: Any, chain: Any, grammar: str) -> None:
        self._ll = llama_cpp
        self._ctx = ctx
        self._chain = chain
        self.grammar = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode("utf-8"), b"root")
        if not self.grammar:
            raise SchemaRefused("llama.cpp could not parse the grammar made from this JSON schema.")
        n = llama_cpp.llama_vocab_n_tokens(vocab)
        self._n = n
        self._data = (llama_cpp.llama_token_data * n)()
        self._view = np.frombuffer(self._data, dtype=_TOKEN_DATA)
        self._ids = np.arange(n, dtype=np.int32)
        self._one = (llama_cpp.llama_token_data * 1)()
        self.resampled = 0  # steps where the free choice broke the grammar

    def sample(self) -> int:
        """The next token (accepted by both the grammar and the chain)."""
        ll = self._ll
        token = self._pick(grammar_first=False)
        if not self._allowed(token):
            self.resampled += 1
            token = self._pick(grammar_first=True)
        ll.llama_sampler_accept(self.grammar, token)
        ll.llama_sampler_accept(self._chain, token)
        return token

    def free(self) -> None:
        self._ll.llama_sampler_free(self.grammar)

    def _pick(self, *, grammar_first: bool) -> int:
        ll = self._ll
        logits = np.ctypeslib.as_array(ll.llama_get_logits_ith(self._ctx, -1), shape=(self._n,))
        view = self._view
        view["id"] = self._ids
        view["logit"] = logits
        view["p"] = 0.0
        candidates = ll.llama_token_data_array(
            ctypes.cast(self._data, ctypes.POINTER(ll.llama_token_data)), self._n, -1, False
        )
        if grammar_first:
            ll.llama_sampler_apply(self.grammar, ctypes.byref(candidates))
        ll.llama_sampler_apply(self._chain, ctypes.byref(candidates))
        if not 0 <= candidates.selected < candidates.size:
            raise RuntimeError("the grammar allows no next token")
        return int(candidates.data[candidates.selected].id)

    def _allowed(self, token: int) -> bool:
        one = self._one
        one[0].id, one[0].logit, one[0].p = token, 1.0, 0.0
        single = self._ll.llama_token_data_array(
            ctypes.cast(one, ctypes.POINTER(self._ll.llama_token_data)), 1, -1, False
        )
        self._ll.llama_sampler_apply(self.grammar, ctypes.byref(single))
        return bool(np.isfinite(one[0].logit))
