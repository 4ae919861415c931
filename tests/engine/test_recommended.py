"""Each model answers with what its makers recommend, under the user's own choices: the
catalog's defaults, else the GGUF's `general.sampling.*` keys, else the app's; a value the user
set in Settings wins over the model's, and a chat's own values over both."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import models
from engine import paths as paths_module
from engine.chats import ChatStore
from engine.conversation import Conversations
from engine.paths import DataPaths
from engine.runtime import TextPiece
from engine.settings import Settings
from tests.gguf_tools import with_metadata
from tests.runtimes import new_runtime

CHAT = models.BUNDLED_CHAT.id


@pytest.fixture
def paths() -> DataPaths:
    return paths_module.resolve().ensure()


def test_the_bundled_model_is_run_as_its_catalog_entry_says(paths: DataPaths) -> None:
    entry = next(m for m in models.load_catalog().models if m.bundled_as == CHAT)
    rec = models.recommendation(CHAT, paths)
    assert rec.source == "the catalog"
    assert rec.sampling["temperature"] == entry.defaults["temperature"] == 0.2
    assert rec.system_prompt == entry.defaults["system_prompt"]
    # by its file as well (the API and the runtime name models by path)
    assert models.recommendation(str(models.BUNDLED_CHAT.path()), paths) == rec
    sampling, system, _ = models.answer_defaults(CHAT, Settings.load(None), paths)
    assert (sampling.temperature, sampling.top_p, system) == (0.2, 0.9, rec.system_prompt)


def test_a_model_file_outside_the_catalog_is_run_as_its_metadata_says(
    paths: DataPaths, bundled_gguf: Path, tmp_path: Path
) -> None:
    tuned = with_metadata(
        bundled_gguf,
        tmp_path / "tuned.gguf",
        {"general.name": "Tuned", "general.sampling.temp": 0.6, "general.sampling.top_k": 20},
    )
    *_, done = models.import_model(tuned, paths, copy=False)
    assert isinstance(done, models.Imported)
    rec = models.recommendation(done.model.id, paths)
    assert rec.source == "the model file" and rec.system_prompt is None
    assert rec.sampling == {"temperature": pytest.approx(0.6), "top_k": 20}
    # a plain file says nothing: the app's defaults
    plain = with_metadata(bundled_gguf, tmp_path / "plain.gguf", {"general.name": "Plain"})
    assert models.recommendation(str(plain), paths) == models.Recommendation()
    sampling, system, _ = models.answer_defaults(str(plain), Settings.load(None), paths)
    assert (sampling.temperature, system) == (0.7, "You are a helpful assistant.")
    # an unreadable file is no error here (loading it says what is wrong)
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF")
    assert models.recommendation(str(broken), paths) == models.Recommendation()


def test_what_the_user_set_wins_over_the_model_and_the_chat_over_both(
    paths: DataPaths, tmp_path: Path
) -> None:
    file = tmp_path / "settings.json"
    file.write_text(json.dumps({"version": 1, "values": {"sampling.temperature": 0.9}}))
    settings = Settings.load(file)
    sampling, system, _ = models.answer_defaults(CHAT, settings, paths)
    assert sampling.temperature == 0.9  # chosen by the user
    assert sampling.top_p == 0.9  # left at the app's default 0.95: the model's 0.9
    assert system == models.recommendation(CHAT, paths).system_prompt
    settings.set("chat.system_prompt", "Be terse.")
    assert models.answer_defaults(CHAT, settings, paths)[1] == "Be terse."

    store = ChatStore(tmp_path / "chats.sqlite")
    try:
        convo = Conversations(store, new_runtime(), settings, paths, lambda: None)
        chat = store.create(sampling={"temperature": 0.1}, system_prompt="Only French.")
        assert convo.answer_settings(chat)[0].temperature == 0.1
        assert convo.answer_settings(chat)[1] == "Only French."
    finally:
        store.close()


@pytest.fixture
def conversations(paths: DataPaths, tmp_path: Path) -> Iterator[Conversations]:
    store = ChatStore(tmp_path / "chats.sqlite")
    convo = Conversations(store, new_runtime(), Settings.load(None), paths, lambda: None)
    yield convo
    convo.runtime.close()
    store.close()


def test_the_bundled_model_answers_the_first_question_right_at_its_defaults(
    conversations: Conversations,
) -> None:
    """The first question a new user asks, in ten fresh chats at the model's defaults (each
    chat seeded, so a failure can be replayed): Paris every time. At the app-wide 0.7 and
    the generic system prompt, it began in French nonsense in about a third of answers."""
    answers = []
    for seed in range(10):
        chat = conversations.store.create(sampling={"seed": seed})
        events = conversations.send(chat.id, "What is the capital of France?")
        answers.append("".join(e.text for e in events if isinstance(e, TextPiece)))
    assert [a for a in answers if "Paris" not in a] == []
