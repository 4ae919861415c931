"""A chat turn with the real bundled model: saved before, during and after the answer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import paths as paths_module
from engine.chats import ChatStore
from engine.conversation import Conversations, Loading, ModelReady, Saved
from engine.runtime import Done, TextPiece
from engine.settings import Settings
from tests.runtimes import new_runtime

GREEDY = {"temperature": 0.0, "max_tokens": 24}


@pytest.fixture
def convo(tmp_path: Path) -> Iterator[Conversations]:
    paths = paths_module.resolve().ensure()
    store = ChatStore(tmp_path / "chats.sqlite")
    runtime = new_runtime()
    yield Conversations(store, runtime, Settings.load(None), paths, lambda: None)
    runtime.close()
    store.close()


def test_send_loads_saves_streams_and_keeps_history(convo: Conversations) -> None:
    chat = convo.store.create(sampling=GREEDY)
    events = list(convo.send(chat.id, "What is the capital of France?"))
    kinds = [type(e).__name__ for e in events]
    assert kinds[:4] == ["Loading", "ModelReady", "Saved", "Saved"]
    assert kinds[-2:] == ["Done", "Saved"] and "TextPiece" in kinds
    assert isinstance(events[0], Loading) and isinstance(events[1], ModelReady)
    final = events[-1].message
    text = "".join(e.text for e in events if isinstance(e, TextPiece))
    assert (final.role, final.status, final.content) == ("assistant", "done", text)
    assert "Paris" in text and final.stats["generated_tokens"] > 0
    assert final.model == "SmolLM2 135M Instruct (Q4_1)"

    first_prompt = next(e for e in events if isinstance(e, Done)).stats.prompt_tokens
    again = list(convo.send(chat.id, "And of Italy?"))
    assert not any(isinstance(e, Loading) for e in again)  # same model, not reloaded
    done = next(e for e in again if isinstance(e, Done))
    assert done.stats.prompt_tokens > first_prompt + final.stats["generated_tokens"]
    assert done.stats.cached_tokens > 0  # the earlier turn was reused from the KV cache
    assert [m.role for m in convo.store.messages(chat.id)] == ["user", "assistant"] * 2


def test_regenerate_replaces_the_answer_and_edit_truncates(convo: Conversations) -> None:
    chat = convo.store.create(sampling={"temperature": 1.0, "max_tokens": 16})
    list(convo.send(chat.id, "Name a colour."))
    list(convo.send(chat.id, "Name an animal."))
    before = convo.store.messages(chat.id)
    events = list(convo.regenerate(chat.id))
    after = convo.store.messages(chat.id)
    assert [m.content for m in after[:3]] == [m.content for m in before[:3]]
    assert len(after) == 4 and after[3].id != before[3].id and after[3].status == "done"
    assert isinstance(events[0], Saved) and events[0].message.status == "streaming"

    list(convo.edit_and_resend(before[0].id, "Name a fruit."))
    edited = convo.store.messages(chat.id)
    assert [m.content for m in edited][:1] == ["Name a fruit."] and len(edited) == 2
    with pytest.raises(Exception, match="Only your own"):
        list(convo.edit_and_resend(edited[1].id, "x"))


def test_stop_keeps_the_partial_answer_as_stopped(convo: Conversations) -> None:
    chat = convo.store.create(sampling={"temperature": 0.8, "seed": 3, "max_tokens": 3000})
    pieces = 0
    for event in convo.send(chat.id, "Write a very long story about a lighthouse keeper."):
        if isinstance(event, TextPiece):
            pieces += 1
            if pieces == 20:
                threading.Thread(target=convo.stop).start()
        last = event
    assert isinstance(last, Saved) and last.message.status == "stopped"
    assert last.message.stats["stop_reason"] == "cancelled"
    assert 20 <= last.message.stats["generated_tokens"] < 3000
    assert convo.store.message(last.message.id).content == last.message.content != ""


QUESTION = "Write a very long story about a dragon."  # seed 1: ~900 tokens, ~6 s
CHILD = textwrap.dedent("""
    import json
    import sys
    import time
    from pathlib import Path
    from engine import models, paths
    from engine.chats import ChatStore
    from engine.conversation import Conversations
    from engine.runtime import ModelRuntime, TextPiece
    from engine.settings import Settings

    QUESTION = sys.argv[2]
    store = ChatStore(Path(sys.argv[1]))
    settings, data = Settings.load(None), paths.resolve().ensure()
    convo = Conversations(store, ModelRuntime(admit=models.gate(settings, data)), settings,
                          data, lambda: None)
    chat = store.create(sampling={"temperature": 0.8, "seed": 1, "max_tokens": 4000})
    reader = ChatStore(Path(sys.argv[1]))  # sees only what the app has committed
    for event in convo.send(chat.id, QUESTION):
        if isinstance(event, TextPiece):
            committed = reader.messages(chat.id)[-1].content
            if len(committed) > 20:  # a save of the growing answer is on disk: kill now
                print(json.dumps(committed), flush=True)
                time.sleep(60)
""")


def test_a_kill_during_an_answer_keeps_every_committed_message(tmp_path: Path) -> None:
    db = tmp_path / "chats.sqlite"
    root = Path(__file__).resolve().parents[2]
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), QUESTION],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert child.stdout is not None
        seen = json.loads(child.stdout.readline())  # the committed answer when it was killed
    finally:
        os.killpg(child.pid, signal.SIGKILL)  # the app and its model worker, no goodbye
        child.wait(10)
    store = ChatStore(db)
    try:
        chat = store.chats()[0]
        msgs = store.messages(chat.id)
        assert [m.role for m in msgs] == ["user", "assistant"]
        assert msgs[0].content == QUESTION
        assert msgs[1].status == "interrupted"
        assert msgs[1].content.startswith(seen) and len(seen) > 20
        assert chat.title == QUESTION
    finally:
        store.close()
