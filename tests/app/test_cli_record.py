"""An answer from documents exported as a record (JSON and printable HTML) and checked later
with `hearth record verify`: a sentence changed after the fact, a document changed, a quote
moved or gone, each reported. Real model, real PDF and DOCX, real index."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import compose
from app.compose import Services
from engine.documents.events import IndexDone
from tests import doc_files
from tests.app.test_cli_docs import PAGES, make_docs, run


@pytest.fixture
def answered(tmp_path: Path) -> Iterator[tuple[Services, int, Path]]:
    services = compose.build()
    docs = make_docs(tmp_path / "docs")
    services.documents.create("work", [str(docs)])
    assert any(isinstance(e, IndexDone) for e in services.documents.sync("work"))
    chat = services.chats.create(
        collections=["work"], sampling={"temperature": 0.0, "max_tokens": 24}
    )
    list(services.conversations.send(chat.id, "What is the vault code word?"))
    yield services, chat.id, docs
    services.close()


def test_a_record_holds_what_was_answered_and_verifies_until_something_changes(
    answered: tuple[Services, int, Path], tmp_path: Path
) -> None:
    services, chat_id, docs = answered
    from engine import models

    out = tmp_path / "record.json"
    exported = run("record", "export", str(chat_id), "-o", str(out))
    assert exported.returncode == 0, exported.stderr
    record = json.loads(out.read_text())
    assert record["question"] == "What is the vault code word?"
    assert record["answer"] == services.chats.messages(chat_id)[-1].content
    assert record["model"]["sha256"] == models.BUNDLED_CHAT.sha256
    assert record["sampling"]["temperature"] == 0.0 and record["llama_cpp_python"]
    pdf = next(s for s in record["sources"] if s["file"] == "report.pdf")
    assert pdf["page"] == 3 and "PELICAN" in pdf["quote"] and len(pdf["document_sha256"]) == 64
    assert record["audit"]["seq"] == 1

    ok = run("record", "verify", str(out))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "question, answer and quotes are as answered" in ok.stdout
    assert "report.pdf: unchanged" in ok.stdout

    page = run("record", "export", str(chat_id), "-o", str(tmp_path / "record.html"))
    assert page.returncode == 0
    shown = (tmp_path / "record.html").read_text()
    assert "What is the vault code word?" in shown and "PELICAN" in shown
    assert models.BUNDLED_CHAT.sha256 in shown

    # A sentence changed after the fact.
    edited = dict(record, answer=record["answer"] + " The code was never changed.")
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    caught = run("record", "verify", str(tmp_path / "edited.json"))
    assert caught.returncode == 1 and "differs from what was answered" in caught.stdout

    # The document changed: a page the quote is not on was rewritten, then the quote's own.
    changed = [PAGES[0].replace("nine", "ten"), *PAGES[1:]]
    doc_files.make_pdf(docs / "report.pdf", changed)
    later = run("record", "verify", str(out))
    assert later.returncode == 1
    assert "report.pdf: the file changed; the quote" in later.stdout
    doc_files.make_pdf(docs / "report.pdf", [*PAGES[:2], "Security. The vault is gone."])
    gone = run("record", "verify", str(out), "--json")
    checks = json.loads(gone.stdout)["checks"]
    assert any(
        "report.pdf: the file changed and the quote is no longer in it" in c["what"] for c in checks
    )
    assert checks[0]["ok"], "the answer itself was not changed"


def test_exporting_a_question_or_a_chat_without_answers_says_why(
    tmp_path: Path,
) -> None:
    services = compose.build()
    chat = services.chats.create()
    services.chats.add_message(chat.id, "user", "hello")
    services.close()
    empty = run("record", "export", str(chat.id), "-o", str(tmp_path / "r.json"))
    assert empty.returncode == 1 and "no answer yet" in empty.stderr
