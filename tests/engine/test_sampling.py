"""The worker's token choice (engine/runtime/sampling.py) against llama.cpp's own sampler chain,
on the bundled model: at every step of a real decode both see the same logits and must pick the
same token, greedy and seeded-sampled, with the repetition penalty that TokenPicker applies
itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine import llama_build
from engine.runtime.params import SamplingParams
from engine.runtime.sampling import RepeatPenalty, TokenPicker, llama_chain

PROMPT = b"<|im_start|>user\nSay cat cat cat cat cat, then count: one two three<|im_end|>\n"
STEPS = 96  # over PENALTY_LAST_N, so the penalty's window also drops tokens


@pytest.fixture(scope="module")
def llm(bundled_gguf: Path) -> Iterator[Any]:
    from llama_cpp import Llama

    llama_build.load_backends()
    model = Llama(model_path=str(bundled_gguf), n_ctx=512, n_threads=2, verbose=False)
    yield model
    model.close()


def decode_both(llm: Any, sampling: SamplingParams) -> tuple[list[int], list[int]]:
    """Decode STEPS tokens; at each step the reference chain picks first (it copies the
    logits), then TokenPicker (it changes them in place). The reference's token is fed on."""
    import llama_cpp as ll
    import numpy as np

    llm.reset()
    llm.eval(llm.tokenize(PROMPT, special=True))
    vocab = ll.llama_model_get_vocab(llm.model)
    n_vocab = llm.n_vocab()
    reference = llama_chain(ll, n_vocab, sampling, with_penalties=True)  # all in llama.cpp
    picker = TokenPicker(ll, llm.ctx, vocab, sampling, None)
    ours: list[int] = []
    theirs: list[int] = []
    plain: list[int] = []  # the argmax before any penalty, to see that the penalty acted
    try:
        for _ in range(STEPS):
            logits = np.ctypeslib.as_array(ll.llama_get_logits_ith(llm.ctx, -1), shape=(n_vocab,))
            plain.append(int(logits.argmax()))
            theirs.append(int(ll.llama_sampler_sample(reference, llm.ctx, -1)))
            ours.append(picker.pick(-1))
            llm.eval([theirs[-1]])
    finally:
        picker.free()
        ll.llama_sampler_free(reference)
    assert plain != theirs, "the penalty never changed a choice: the test would prove nothing"
    return ours, theirs


def test_greedy_with_the_repeat_penalty_picks_what_llama_cpp_picks(llm: Any) -> None:
    ours, theirs = decode_both(llm, SamplingParams(temperature=0, repeat_penalty=1.3))
    assert ours == theirs


def test_seeded_sampling_with_the_repeat_penalty_picks_what_llama_cpp_picks(llm: Any) -> None:
    sampling = SamplingParams(temperature=0.9, top_k=40, top_p=0.95, min_p=0.05, seed=11)
    ours, theirs = decode_both(llm, sampling)
    assert ours == theirs
    assert len(set(theirs)) > 10  # really sampled text, not one token over and over


def test_the_penalty_window_forgets_the_oldest_token() -> None:
    import numpy as np

    penalty = RepeatPenalty(2.0, last_n=2)
    for token in (1, 2, 3):  # 1 falls out of a window of 2
        penalty.accept(token)
    logits = np.array([4.0, 4.0, 4.0, -4.0], dtype=np.float32)
    penalty.apply(logits)
    assert logits.tolist() == [4.0, 4.0, 2.0, -8.0]
