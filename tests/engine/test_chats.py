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
    changed = store.configure(
        chat.id,
        model="qwen",
        system_prompt="Be brief.",
        sampling={"temperature": 0.1},
        collections=["work"],
        documents_only=True,
    )
    assert (
        changed.model,
        changed.system_prompt,
        changed.sampling,
        changed.collections,
        changed.documents_only,
    ) == ("qwen", "Be brief.", {"temperature": 0.1}, ("work",), True)
    store.delete(chat.id)
    with pytest.raises(ChatNotFound):
        store.chat(chat.id)
    with sqlite3.connect(store.path) as db:
        assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0


def test_delete_from_truncates_the_rest_of_the_chat(store) -> None:
    chat = store.create()
    ids = [
        store.add_message(chat.id, role, text).id
        for role, text in [("user", "1"), ("assistant", "2"), ("user", "3"), ("assistant", "4")]
    ]
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
        ("user", "Tell me a story", "done"),
        ("assistant", "Once upon a", "interrupted"),
    ]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert [r[0] for r in db.execute("SELECT name FROM migrations")] == [
            "001_initial",
            "002_grounding",
        ]
    first.close()
    second.close()


def test_a_newer_migration_backs_up_the_store_first(tmp_path: Path, monkeypatch) -> None:
    from engine import chats

    path = tmp_path / "chats.sqlite"
    s = ChatStore(path)
    s.add_message(s.create().id, "user", "keep me")
    s.close()
    added = (
        *chats.MIGRATIONS,
        ("002_test", "ALTER TABLE chats ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;"),
    )
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
    store._db.execute(
        "UPDATE chats SET updated=? WHERE id=?", (time_module.time() - 31 * 86400, old.id)
    )
    assert store.delete_older_than(30) == 1
    assert [c.title for c in store.chats()] == ["Recent"] and recent.id
    store.close()
    raw = sqlite3.connect(tmp_path / "chats.sqlite")
    assert raw.execute("SELECT count(*) FROM messages").fetchone() == (0,)
    raw.close()


# -- search ------------------------------------------------------------------------------------

HOSTILE = [
    '"',
    "'",
    '""',
    "*",
    "lens*",
    "NEAR",
    "NEAR(a b)",
    "-",
    "-lens",
    "a OR b",
    "a AND",
    "title:x",
    "^",
    "(",
    ")",
    "[x]",
    "{",
    "\\",
    "\\%",
    "%_%",
    "_",
    "?",
    ";",
    "--",
    "'; DROP TABLE chats; --",
    "\u200b",
    "🔥",
    "東京",
    "é",
]


@pytest.fixture
def corpus(store) -> dict[str, int]:
    """One chat holding every hostile string, and three whose text the other tests look for."""
    ids = {}
    for title, text in [
        ("Everything", " | ".join(HOSTILE)),
        ("Quotes", 'She said "lens*" -- then NEAR(a b) and a OR b; title:x ^ (y) [x] {'),
        ("Paths", "C:\\temp\\% and 100% _under_score? 'single'"),
        ("Unicode", "Café in 東京 🔥 with a zero\u200bwidth space, é"),
    ]:
        chat = store.create(title=title)
        store.add_message(chat.id, "user", text)
        ids[title] = chat.id
    return ids


def ascii_lower(text: str) -> str:
    return text.translate({c: c + 32 for c in range(ord("A"), ord("Z") + 1)})


@pytest.mark.parametrize("query", HOSTILE)
def test_search_takes_any_text_literally_and_never_raises(store, corpus, query) -> None:
    """Whatever the user types is a literal substring: no wildcard, operator or quote in it
    widens or breaks the match, and none raises."""
    needle = ascii_lower(query.strip())
    expected = {
        cid
        for cid in corpus.values()
        if needle in ascii_lower(store.chat(cid).title)
        or any(needle in ascii_lower(m.content) for m in store.messages(cid))
    }
    found = {c.id for c in store.chats(query)}
    assert corpus["Everything"] in found and found == expected
    assert store.titles(query) == [(c.id, c.title) for c in store.chats(query)]
    assert store.chats(query + "\u2603absent") == []
    assert len(store.chats()) == 4  # and nothing was dropped


def test_search_matches_substrings_ignoring_the_case_of_ascii_letters(store, corpus) -> None:
    assert [c.title for c in store.chats('ENS*" --')] == ["Quotes"]  # mid-word, any case
    assert [c.title for c in store.chats("  A or B;  ")] == ["Quotes"]  # trimmed
    assert [c.title for c in store.chats("CAFÉ")] == []  # as before: LIKE folds A-Z only
    assert [c.title for c in store.chats("café in 東京 🔥")] == ["Unicode"]
    assert [c.title for c in store.chats("\\% AND 100%")] == ["Paths"]
    assert [c.title for c in store.chats("quot")] == ["Quotes"]  # the title alone
    assert store.chats("lens\0 NEAR") == store.chats("lens NEAR") == []  # a NUL is dropped


def test_search_finds_text_deep_in_a_one_megabyte_message(store) -> None:
    chat = store.create(title="Log")
    store.add_message(chat.id, "user", "x" * 1_000_000 + " needle-at-the-end")
    store.create(title="Other")
    assert [c.title for c in store.chats("NEEDLE-AT-THE-END")] == ["Log"]
    assert [c.title for c in store.chats("x" * 20)] == ["Log"]


def test_a_search_longer_than_sqlites_like_limit_still_matches(store) -> None:
    """SQLite refuses LIKE patterns over 50,000 bytes; such a search (a pasted page) takes
    another path with the same meaning instead of raising."""
    long_text = "Paragraph " + "lorem ipsum " * 6000  # 72,010 characters
    chat = store.create(title="Pasted")
    store.add_message(chat.id, "user", "before " + long_text + " after")
    store.create(title="Other")
    assert [c.title for c in store.chats(long_text.upper())] == ["Pasted"]
    assert store.chats(long_text + "!") == []


def test_search_lists_newest_first_and_finds_a_chat_once(store) -> None:
    old = store.create(title="Old")
    for n in range(3):
        store.add_message(old.id, "user", f"lighthouse {n}")
    new = store.create(title="New lighthouse")
    store.add_message(new.id, "user", "lighthouse again")
    assert [c.id for c in store.chats("lighthouse")] == [new.id, old.id]


def test_a_search_is_not_held_up_by_a_write_in_progress(store) -> None:
    """A search reads on its own connection: it neither waits for the store's lock nor sees
    text that is not committed yet."""
    import threading

    chat = store.create(title="Notes")
    store.add_message(chat.id, "user", "committed lighthouse")
    found: list[list[str]] = []
    with store._tx() as db:  # a writer holds the store (as an answer being saved does)
        db.execute("UPDATE messages SET content='uncommitted beacon'")
        searcher = threading.Thread(
            target=lambda: found.append(
                [c.title for c in store.chats("lighthouse")]
                + [c.title for c in store.chats("beacon")]
            )
        )
        searcher.start()
        searcher.join(5)
        assert not searcher.is_alive()
    assert found == [["Notes"]]
    assert [c.title for c in store.chats("beacon")] == ["Notes"]  # once committed


def test_search_works_in_an_encrypted_store(tmp_path: Path) -> None:
    from engine import vault

    key = "ab" * 32
    store = ChatStore(tmp_path / "chats.sqlite", key=key)
    chat = store.create(title="Deal")
    store.add_message(chat.id, "user", "The merger closes on 3 March with Contoso")
    store.create(title="Other")
    assert [c.title for c in store.chats("contoso")] == ["Deal"]
    store.close()
    assert vault.is_encrypted(tmp_path / "chats.sqlite")


def test_search_works_in_the_in_memory_store(tmp_path: Path) -> None:
    """The store the app falls back to when the history cannot be opened has no file for a
    second connection: it searches on its one connection."""
    store = ChatStore(Path(":memory:"))
    chat = store.create(title="Session")
    store.add_message(chat.id, "user", "kept in memory only")
    assert [c.title for c in store.chats("MEMORY")] == ["Session"]
    store.close()


def test_a_history_written_before_this_version_is_searched_as_it_is(tmp_path: Path) -> None:
    """A file made before answers were checked against their sources (its schema and
    migrations table written here by hand) gains the grounding column, keeps a backup of
    itself from before, and is searched as it was."""
    from engine.chats import MIGRATIONS
    from engine.db import split_sql

    path = tmp_path / "chats.sqlite"
    raw = sqlite3.connect(path)
    for statement in split_sql(MIGRATIONS[0][1]):
        raw.execute(statement)
    raw.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied REAL NOT NULL)")
    raw.execute("INSERT INTO migrations VALUES ('001_initial', 0)")
    raw.execute("INSERT INTO chats (title, created, updated) VALUES ('Old chat', 1, 1)")
    raw.execute(
        "INSERT INTO messages (chat_id, seq, role, content, status, created) "
        "VALUES (1, 1, 'user', 'Where is the lighthouse?', 'done', 1)"
    )
    raw.commit()
    raw.close()
    store = ChatStore(path)
    assert [c.title for c in store.chats("LIGHTHOUSE")] == ["Old chat"]
    assert store.messages(1)[0].grounding is None
    store.close()
    assert [p.name for p in tmp_path.glob("chats.sqlite.before-*")] == [
        "chats.sqlite.before-002_grounding"
    ]
