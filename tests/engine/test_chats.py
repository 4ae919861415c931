"""The chat store keeps chats and messages in SQLite, searchable, and survives a kill."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from engine.chats import DEFAULT_TITLE, ChatNotFound, ChatStore


@pytest.fixture
def store(tmp_path: Path):
    s = ChatStore(tmp_path / "chats.sqlite")
    yield s
    s.close()


def test_first_question_names_the_chat_and_search_finds_title_and_content(store) -> None:
    a = store.create()
    assert a.title == DEFAULT_TITLE
    store.add_message(a.id, "user", "How do lighthouses work?")
    store.add_message(a.id, "assistant", "A lamp and a Fresnel lens.")
    b = store.create(title="Groceries")
    store.add_message(b.id, "user", "milk, eggs, 100% cocoa")
    assert store.chat(a.id).title == "How do lighthouses work?"
    assert store.chat(b.id).title == "Groceries"  # a name the user gave is kept
    assert [c.id for c in store.chats()] == [b.id, a.id]  # newest first
    assert [c.id for c in store.chats("fresnel")] == [a.id]  # message text, any case
    assert [c.id for c in store.chats("GROCER")] == [b.id]  # title
    assert [c.id for c in store.chats("100%")] == [b.id]  # LIKE wildcards are literal
    assert store.chats("0% c") == [store.chat(b.id)]
    assert store.chats("%") == [store.chat(b.id)]


def test_rename_configure_delete_cascade(store) -> None:
    chat = store.create()
    store.add_message(chat.id, "user", "hi")
    assert store.rename(chat.id, "  My   chat ").title == "My chat"
    with pytest.raises(Exception, match="needs a name"):
        store.rename(chat.id, "   ")
    changed = store.configure(chat.id, model="qwen", system_prompt="Be brief.",
                              sampling={"temperature": 0.1}, collections=["work"],
                              documents_only=True)
    assert (changed.model, changed.system_prompt, changed.sampling, changed.collections,
            changed.documents_only) == ("qwen", "Be brief.", {"temperature": 0.1}, ("work",),
                                        True)
    store.delete(chat.id)
    with pytest.raises(ChatNotFound):
        store.chat(chat.id)
    with sqlite3.connect(store.path) as db:
        assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0


def test_delete_from_truncates_the_rest_of_the_chat(store) -> None:
    chat = store.create()
    ids = [store.add_message(chat.id, role, text).id for role, text in
           [("user", "1"), ("assistant", "2"), ("user", "3"), ("assistant", "4")]]
    store.delete_from(ids[2])
    assert [m.content for m in store.messages(chat.id)] == ["1", "2"]
    assert store.add_message(chat.id, "user", "3b").seq == 3


def test_reopen_marks_an_unfinished_answer_interrupted_and_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / "chats.sqlite"
    first = ChatStore(path)
    chat = first.create()
    first.add_message(chat.id, "user", "Tell me a story")
    answer = first.add_message(chat.id, "assistant", "", status="streaming")
    first.update_message(answer.id, content="Once upon a")
    # no close(): as after a kill, the WAL holds the commits
    second = ChatStore(path)
    msgs = second.messages(chat.id)
    assert [(m.role, m.content, m.status) for m in msgs] == [
        ("user", "Tell me a story", "done"), ("assistant", "Once upon a", "interrupted")]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert [r[0] for r in db.execute("SELECT name FROM migrations")] == ["001_initial"]
    first.close()
    second.close()


def test_a_newer_migration_backs_up_the_store_first(tmp_path: Path, monkeypatch) -> None:
    from engine import chats

    path = tmp_path / "chats.sqlite"
    s = ChatStore(path)
    s.add_message(s.create().id, "user", "keep me")
    s.close()
    added = (*chats.MIGRATIONS,
             ("002_test", "ALTER TABLE chats ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;"))
    monkeypatch.setattr(chats, "MIGRATIONS", added)
    s = ChatStore(path)
    s.close()
    backup = tmp_path / "chats.sqlite.before-002_test"
    with sqlite3.connect(backup) as db:
        assert db.execute("SELECT content FROM messages").fetchone()[0] == "keep me"
    with sqlite3.connect(path) as db:
        assert "pinned" in [r[1] for r in db.execute("PRAGMA table_info(chats)")]


def test_first_opens_racing_on_a_new_file_all_succeed(tmp_path: Path) -> None:
    """The window's pages (and a CLI command) may open a brand-new store at the same moment;
    SQLite refuses the WAL switch of all but one without waiting. Each must still open."""
    import threading

    from engine.documents.store import DocumentStore

    for n, opener in enumerate((ChatStore, DocumentStore)):
        path = tmp_path / f"store-{n}.sqlite"
        errors: list[BaseException] = []
        start = threading.Barrier(8)

        def open_it(opener=opener, path=path, start=start, errors=errors) -> None:
            start.wait()
            try:
                opener(path).close()
            except BaseException as exc:  # collected for the assert below
                errors.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == []


def test_retention_deletes_chats_untouched_for_longer(tmp_path) -> None:
    import sqlite3
    import time as time_module

    from engine.chats import ChatStore

    store = ChatStore(tmp_path / "chats.sqlite")
    old = store.create(title="Old case")
    store.add_message(old.id, "user", "FORGOTTEN-DETAIL")
    recent = store.create(title="Recent")
    store._db.execute("UPDATE chats SET updated=? WHERE id=?",
                      (time_module.time() - 31 * 86400, old.id))
    assert store.delete_older_than(30) == 1
    assert [c.title for c in store.chats()] == ["Recent"] and recent.id
    store.close()
    raw = sqlite3.connect(tmp_path / "chats.sqlite")
    assert raw.execute("SELECT count(*) FROM messages").fetchone() == (0,)
    raw.close()
