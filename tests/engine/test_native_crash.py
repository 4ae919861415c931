"""A native crash in llama.cpp's fast CPU kernels on the first answer after a load: the runtime
loads the model again on its plain kernels, once, and answers the same question there.

The crash is real (the worker dies of the signal) and its cause simulated: tests/native_faults
makes `llama_decode` kill the process whenever the model was loaded with llama.cpp's extra
buffer types, as its AMX kernel does on Sapphire Rapids (llama.cpp issue #20824). The plain
kernels themselves are tested for real beside it: the same greedy answer as the fast ones.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import WorkerCrashed
from engine.runtime import ChatMessage, ChatRequest, Done, LoadParams, Notice, TextPiece
from engine.runtime.params import SamplingParams
from tests.runtimes import bundled_system_prompt, new_runtime

FAULTS = Path(__file__).resolve().parents[1] / "native_faults"
QUESTION = "What is the capital of France?"


def request() -> ChatRequest:
    return ChatRequest(
        messages=(ChatMessage("user", QUESTION),),
        sampling=SamplingParams(temperature=0.0, max_tokens=16),
        system_prompt=bundled_system_prompt(),
    )


def answer(events: list[object]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextPiece))


@pytest.fixture
def faulty(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Workers started from here on load tests/native_faults (their environment is ours)."""
    monkeypatch.setenv("PYTHONPATH", str(FAULTS))
    return monkeypatch


def test_plain_kernels_give_the_same_greedy_answer_as_the_fast_ones(bundled_gguf: Path) -> None:
    answers, buffers = {}, {}
    for plain in (False, True):
        with new_runtime() as runtime:
            loaded = runtime.load(
                LoadParams(str(bundled_gguf), context_length=512, plain_cpu_kernels=plain)
            )
            assert loaded.runtime["plain_cpu_kernels"] is plain
            buffers[plain] = set(loaded.runtime["offload"]["devices"])
            answers[plain] = answer(list(runtime.stream_chat(request())))
    assert "Paris" in answers[False] and "Paris" in answers[True]
    if buffers[False] == buffers[True]:
        # No AMX or repacked weights on this CPU for this model: the very same arithmetic.
        assert answers[True] == answers[False]
    else:
        # AMX or repacked kernels round differently from the plain ones (the self-test holds
        # them to 1 % perplexity): the same fact, not always the same greedy words.
        assert buffers[True] <= {"CPU", "CPU_Mapped"}


@pytest.mark.parametrize("signal_name", ["SIGSEGV", "SIGILL"])
def test_a_crash_in_the_fast_kernels_is_answered_again_on_the_plain_ones(
    bundled_gguf: Path, faulty: pytest.MonkeyPatch, signal_name: str
) -> None:
    faulty.setenv("HEARTH_TEST_LLAMA_FAULT", signal_name)
    with new_runtime() as runtime:
        runtime.load(LoadParams(str(bundled_gguf), context_length=512))
        first_worker = runtime.worker_pid
        events = list(runtime.stream_chat(request()))
        notices = [e for e in events if isinstance(e, Notice)]
        assert len(notices) == 1 and "plain" in notices[0].message
        assert "Paris" in answer(events) and isinstance(events[-1], Done)
        assert runtime.plain_cpu_kernels and runtime.worker_pid != first_worker
        assert runtime.loaded is not None and runtime.loaded.runtime["plain_cpu_kernels"]
        # The chat asks for the model it asked for before: that is still the one loaded, so
        # no turn loads it again (engine/conversation.py asks `holds`).
        assert runtime.holds(LoadParams(str(bundled_gguf), context_length=512))
        # The runtime keeps to the plain kernels: a later answer and a later load crash no more.
        assert "Paris" in answer(list(runtime.stream_chat(request())))
        runtime.load(LoadParams(str(bundled_gguf), context_length=1024))
        assert runtime.loaded.runtime["plain_cpu_kernels"]
        assert "Paris" in answer(list(runtime.stream_chat(request())))


def test_a_second_crash_is_final_and_says_so_in_plain_words(
    bundled_gguf: Path, faulty: pytest.MonkeyPatch
) -> None:
    faulty.setenv("HEARTH_TEST_LLAMA_FAULT", "always:SIGSEGV")
    with new_runtime() as runtime:
        runtime.load(LoadParams(str(bundled_gguf), context_length=512))
        with pytest.raises(WorkerCrashed) as crash:
            list(runtime.stream_chat(request()))
        assert crash.value.signal_name == "SIGSEGV"
        assert "crashed twice" in crash.value.user_message
        assert "question is kept" in crash.value.user_message
        # Never a crash loop: the next request loads once more and crashes once more, no
        # retry behind the user's back, since the plain kernels are already in use.
        assert runtime.loaded is None
        runtime.load(LoadParams(str(bundled_gguf), context_length=512))
        with pytest.raises(WorkerCrashed) as again:
            list(runtime.stream_chat(request()))
        assert "crashed twice" not in again.value.user_message


def test_a_worker_killed_for_memory_is_not_loaded_again_on_plain_kernels(
    bundled_gguf: Path, faulty: pytest.MonkeyPatch
) -> None:
    """SIGKILL (the kernel's out-of-memory killer) is not a kernel's crash: plain kernels
    would only be killed again, so the user is told at once."""
    faulty.setenv("HEARTH_TEST_LLAMA_FAULT", "SIGKILL")
    with new_runtime() as runtime:
        runtime.load(LoadParams(str(bundled_gguf), context_length=512))
        with pytest.raises(WorkerCrashed) as crash:
            list(runtime.stream_chat(request()))
        assert crash.value.signal_name == "SIGKILL" and "memory" in crash.value.user_message
        assert not runtime.plain_cpu_kernels


def test_a_crash_of_the_fast_kernels_is_remembered_for_the_next_start(
    bundled_gguf: Path, faulty: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The app passes a `kernel_memory` file (app/compose.py): after the crash, the next start
    of the same llama.cpp build loads plain kernels first and answers with no crash and no
    notice; a file of another build, or one that cannot be read, is not obeyed."""
    import json

    from engine.runtime import kernel_memory

    memory = tmp_path / kernel_memory.FILE_NAME
    faulty.setenv("HEARTH_TEST_LLAMA_FAULT", "SIGSEGV")
    with new_runtime(kernel_memory=memory) as runtime:
        assert not runtime.plain_cpu_kernels
        runtime.load(LoadParams(str(bundled_gguf), context_length=512))
        assert any(isinstance(e, Notice) for e in runtime.stream_chat(request()))
    record = json.loads(memory.read_text())
    assert record["signal"] == "SIGSEGV" and record["build"] == kernel_memory.build_key()

    with new_runtime(kernel_memory=memory) as again:  # the next start
        assert again.plain_cpu_kernels
        loaded = again.load(LoadParams(str(bundled_gguf), context_length=512))
        assert loaded.runtime["plain_cpu_kernels"]
        events = list(again.stream_chat(request()))
        assert not any(isinstance(e, Notice) for e in events)
        assert "Paris" in answer(events)

    memory.write_text(json.dumps(record | {"build": "another llama.cpp"}))
    assert not new_runtime(kernel_memory=memory).plain_cpu_kernels
    memory.write_text("{not json")
    assert not new_runtime(kernel_memory=memory).plain_cpu_kernels
