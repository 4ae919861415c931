"""A chat exported to Markdown or JSON keeps its answers' sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine import chat_export
from engine.chats import ChatStore
from engine.errors import HearthError

SOURCE = {
    "n": 1,
    "path": "/docs/lease.pdf",
    "file": "lease.pdf",
    "page": 3,
    "quote": "The tenant pays rent monthly.",
    "similarity": 0.8,
}
SCANNED = {
    "n": 2,
    "path": "/docs/deed.pdf",
    "file": "deed.pdf",
    "page": 1,
    "quote": "The land passes to the tenant's heirs.",
    "similarity": 0.7,
    "ocr": True,
}


@pytest.fixture
def store(tmp_path: Path) -> ChatStore:
    store = ChatStore(tmp_path / "chats.sqlite")
    chat = store.create(title="Lease questions")
    store.add_message(chat.id, "user", "When is rent due?")
    answer = store.add_message(chat.id, "assistant", "Monthly [1].", model="SmolLM2")
    store.update_message(answer.id, sources=[SOURCE, SCANNED])
    return store


def test_markdown_and_json_keep_sources(store: ChatStore, tmp_path: Path) -> None:
    md = chat_export.write(store, 1, tmp_path / "lease.md").read_text(encoding="utf-8")
    assert md.startswith("# Lease questions")
    assert "**You**" in md and "**SmolLM2**" in md and "Monthly [1]." in md
    assert "1. lease.pdf, page 3: “The tenant pays rent monthly.”" in md
    assert "2. deed.pdf, page 1 · OCR: “The land passes to the tenant's heirs.”" in md
    data = json.loads(chat_export.write(store, 1, tmp_path / "lease.json").read_text())
    assert data["messages"][1]["sources"][0]["quote"] == SOURCE["quote"]
    assert not list(tmp_path.glob(".*.tmp"))


def test_an_unwritable_target_is_a_clear_error(store: ChatStore, tmp_path: Path) -> None:
    with pytest.raises(HearthError, match="could not be written"):
        chat_export.write(store, 1, tmp_path / "missing folder" / "x.md")
