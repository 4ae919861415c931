"""Indexing real files with the real embedder, a real chromadb and our SQLite store."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.documents.embedder import Embedder
from engine.documents.events import IndexDone, IndexProgress
from engine.documents.library import DocumentLibrary
from engine.documents.store import DocumentStore
from engine.settings import Settings
from tests import doc_files
from tests.runtimes import new_runtime

PAGES = [
    "Quarterly report for the board. Revenue grew by nine percent in the northern region.",
    "Staffing. The clinic hired four nurses in March and two pharmacists in April.",
    "Security. The vault code word is PELICAN and it is changed every Tuesday by the "
    "facilities manager.",
]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


def library(folder: Path, embedder: Embedder, **overrides: Any) -> DocumentLibrary:
    settings = Settings.load(None)
    for key, value in overrides.items():
        settings.set(key, value)
    return DocumentLibrary(folder, settings, embedder)


def run_sync(lib: DocumentLibrary, name: str) -> IndexDone:
    done = [e for e in lib.sync(name) if isinstance(e, IndexDone)]
    assert len(done) == 1
    return done[0]


def good_files(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    doc_files.make_pdf(folder / "report.pdf", PAGES)
    doc_files.make_docx(
        folder / "policy.docx",
        [
            ("Remote work", ["Employees may work remotely two days per week."]),
            ("Expenses", ["Travel expenses above 500 euros need approval from a director."]),
        ],
        page_break_between=True,
        table=[["Item", "Limit"], ["Hotel", "150 euros per night"]],
    )
    (folder / "garden.md").write_text(
        "# Garden\n\nTomatoes need full sun.\n\n## Pests\n\nAphids are washed off with "
        "soapy water.\n",
        encoding="utf-8",
    )


def chroma_ids(lib: DocumentLibrary, name: str) -> set[int]:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.PersistentClient(
        path=str(lib.folder / "vectors"),
        settings=ChromaSettings(anonymized_telemetry=False, allow_reset=True),
    )
    info_id = DocumentStore(lib.folder / "documents.sqlite").collection(name).id
    col = client.get_collection(f"hearth-{info_id}", embedding_function=None)
    return {int(i) for i in col.get(include=[])["ids"]}


def sqlite_ids(lib: DocumentLibrary, name: str) -> set[int]:
    store = DocumentStore(lib.folder / "documents.sqlite")
    col = store.collection(name)
    return {
        r[0] for r in store.db.execute("SELECT id FROM chunks WHERE collection_id = ?", (col.id,))
    }


def test_citations_name_the_right_file_page_and_section(tmp_path: Path, embedder: Embedder) -> None:
    good_files(tmp_path / "docs")
    lib = library(tmp_path / "index", embedder)
    lib.create("work", [str(tmp_path / "docs")])
    done = run_sync(lib, "work")
    assert (done.indexed, done.skipped, done.failed) == (3, 0, 0)

    hit = lib.search("work", "What is the code word for the vault?").hits[0]
    assert (Path(hit.path).name, hit.page) == ("report.pdf", 3)
    assert "PELICAN" in hit.text and hit.vector_rank == 1
    hit = lib.search("work", "Who must approve expensive travel?").hits[0]
    assert (Path(hit.path).name, hit.page, hit.heading) == ("policy.docx", 2, "Expenses")
    hit = lib.search("work", "how do I get rid of aphids").hits[0]
    assert (Path(hit.path).name, hit.page, hit.heading) == ("garden.md", None, "Garden › Pests")
    assert chroma_ids(lib, "work") == sqlite_ids(lib, "work")


def test_hostile_files_each_end_with_a_status_while_the_rest_index(
    tmp_path: Path, embedder: Embedder
) -> None:
    docs = tmp_path / "docs"
    good_files(docs)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "private.txt").write_text("not part of the collection", encoding="utf-8")
    doc_files.make_encrypted_pdf(docs / "locked.pdf", docs / "report.pdf")
    doc_files.truncate(doc_files.make_pdf(docs / "truncated.pdf", PAGES * 3), 0.35)
    doc_files.make_docx_zip_bomb(docs / "bomb.docx", docs / "policy.docx")
    doc_files.make_scanned_pdf(docs / "scan.pdf")
    (docs / "binary.txt").write_bytes(os.urandom(4096))
    (docs / "latin1.txt").write_bytes(
        "Le comité a approuvé le budget de l'hôpital.".encode("cp1252") * 3
    )
    (docs / "empty.txt").write_bytes(b"")
    (docs / "photo.jpg").write_bytes(b"\xff\xd8\xff" + os.urandom(100))
    (docs / "sub").mkdir()
    (docs / "sub" / "loop").symlink_to(docs, target_is_directory=True)
    (docs / "self.txt").symlink_to(docs / "self.txt")
    (docs / "escape.txt").symlink_to(outside / "private.txt")
    doc_files.make_fifo(docs / "pipe.txt")

    lib = library(tmp_path / "index", embedder)
    lib.create("mixed", [str(docs)])
    done = run_sync(lib, "mixed")
    rows = {Path(r.path).relative_to(docs).as_posix(): r for r in lib.documents("mixed")}
    expected = {
        "report.pdf": ("indexed", None),
        "policy.docx": ("indexed", None),
        "garden.md": ("indexed", None),
        "latin1.txt": ("indexed", "not UTF-8"),
        "locked.pdf": ("skipped", "password"),
        "truncated.pdf": ("failed", "PDF"),
        "bomb.docx": ("skipped", "zip bomb"),
        "scan.pdf": ("skipped", "no text layer"),
        "binary.txt": ("skipped", "binary"),
        "empty.txt": ("skipped", "empty"),
        "photo.jpg": ("skipped", "file type not read"),
        "sub/loop": ("skipped", "link loop"),
        "self.txt": ("failed", "link loop"),
        "escape.txt": ("skipped", "outside the collection"),
        "pipe.txt": ("skipped", "not a regular file"),
    }
    got = {name: (r.status, r.reason) for name, r in rows.items()}
    assert set(got) == set(expected), got
    for name, (status, reason) in expected.items():
        assert got[name][0] == status, (name, got[name])
        if reason:
            assert reason in (got[name][1] or ""), (name, got[name])
    assert done.indexed == 4 and done.indexed + done.skipped + done.failed == len(expected)
    assert "private.txt" not in {Path(r.path).name for r in lib.documents("mixed")}


def test_resync_skips_unchanged_rehashes_changed_and_forgets_removed(
    tmp_path: Path, embedder: Embedder
) -> None:
    docs = tmp_path / "docs"
    good_files(docs)
    lib = library(tmp_path / "index", embedder)
    lib.create("c", [str(docs)])
    run_sync(lib, "c")
    again = run_sync(lib, "c")
    assert (again.unchanged, again.indexed, again.chunks_added) == (3, 0, 0)

    garden = docs / "garden.md"
    os.utime(garden, ns=(garden.stat().st_atime_ns, garden.stat().st_mtime_ns + 10**9))
    touched = run_sync(lib, "c")  # new mtime, same bytes: hashed, not re-read
    assert (touched.unchanged, touched.indexed, touched.chunks_added) == (2, 0, 0)

    garden.write_text("# Garden\n\nSlugs are kept off with copper tape.\n", encoding="utf-8")
    changed = run_sync(lib, "c")
    assert changed.indexed == 1
    assert "copper" in lib.search("c", "how to keep slugs away").hits[0].text

    (docs / "report.pdf").unlink()
    removed = run_sync(lib, "c")
    assert removed.removed == 1 and removed.counts["indexed"] == 2
    assert not [
        h
        for h in lib.search("c", "vault code word PELICAN", min_score=0).hits
        if h.path.endswith("report.pdf")
    ]
    assert chroma_ids(lib, "c") == sqlite_ids(lib, "c")


def test_a_file_name_that_is_not_utf8_indexes_with_the_rest_and_round_trips(
    tmp_path: Path, embedder: Embedder
) -> None:
    """A Latin-1 name (bytes b"caf\\xe9…") used to abort the whole sync with the tokenizer's
    "TextInputSequence must be str", and then SQLite refused the path: no file of the
    collection indexed. Now it indexes, its path comes back byte for byte, and a re-sync
    finds it unchanged."""
    docs = tmp_path / "docs"
    good_files(docs)
    raw = os.path.join(os.fsencode(docs), b"caf\xe9-boiler.txt")
    with open(raw, "wb") as fh:
        fh.write(b"The boiler room key hangs behind the blue door in the cellar.\n")
    lib = library(tmp_path / "index", embedder)
    lib.create("c", [str(docs)])
    done = run_sync(lib, "c")
    assert (done.indexed, done.failed) == (4, 0), done
    hit = lib.search("c", "where is the boiler room key").hits[0]
    assert os.fsencode(hit.path) == raw and "blue door" in hit.text
    again = run_sync(lib, "c")
    assert (again.unchanged, again.indexed) == (4, 0)
    assert chroma_ids(lib, "c") == sqlite_ids(lib, "c")


def test_a_file_the_embedder_chokes_on_fails_alone(tmp_path: Path, embedder: Embedder) -> None:
    """Whatever a file's data does to the embedder, that file fails with the reason and the
    others of its batch index (the real embedder, refusing one marked input)."""

    class Choking(Embedder):
        def passage_input(self, context: str, text: str, text_tokens: int) -> str:
            if "POISON" in text:
                raise TypeError("TextInputSequence must be str")
            return super().passage_input(context, text, text_tokens)

    choking = Choking()
    embedder.model()
    choking._model, choking._session = embedder._model, embedder._session  # not a second copy
    docs = tmp_path / "docs"
    good_files(docs)
    (docs / "poison.txt").write_text("POISON in this file's text.\n", encoding="utf-8")
    lib = library(tmp_path / "index", choking)
    lib.create("c", [str(docs)])
    done = run_sync(lib, "c")
    assert (done.indexed, done.failed) == (3, 1), done
    poison = next(r for r in lib.documents("c") if r.path.endswith("poison.txt"))
    assert poison.status == "failed"
    assert poison.reason and "could not be indexed (TypeError" in poison.reason
    assert "Tomatoes" in lib.search("c", "what do tomatoes need").hits[0].text


def test_deleted_vector_folder_is_rebuilt_with_the_same_results(
    tmp_path: Path, embedder: Embedder
) -> None:
    good_files(tmp_path / "docs")
    lib = library(tmp_path / "index", embedder)
    lib.create("c", [str(tmp_path / "docs")])
    run_sync(lib, "c")
    questions = ["vault code word", "hotel limit per night", "remote work days"]
    before = [
        [(h.chunk_id, round(h.similarity, 5)) for h in lib.search("c", q).hits] for q in questions
    ]
    shutil.rmtree(lib.folder / "vectors")
    result = lib.search("c", questions[0])
    assert any("rebuilt" in n for n in result.notes)
    after = [
        [(h.chunk_id, round(h.similarity, 5)) for h in lib.search("c", q).hits] for q in questions
    ]
    assert after == before and all(before)
    assert chroma_ids(lib, "c") == sqlite_ids(lib, "c")


def test_damaged_or_foreign_vector_index_is_rebuilt(tmp_path: Path, embedder: Embedder) -> None:
    good_files(tmp_path / "docs")
    lib = library(tmp_path / "index", embedder)
    lib.create("c", [str(tmp_path / "docs")])
    run_sync(lib, "c")
    expected = [h.chunk_id for h in lib.search("c", "vault code word").hits]
    marker = lib.folder / "vectors" / "hearth-vectors.json"
    marker.write_text('{"chromadb": "0.4.0", "layout": 1}')  # another chromadb's folder
    assert [h.chunk_id for h in lib.search("c", "vault code word").hits] == expected
    for f in (lib.folder / "vectors").rglob("*"):
        if f.is_file() and f.name != "hearth-vectors.json":
            f.write_bytes(b"garbage" * 100)  # damaged files
    result = lib.search("c", "vault code word")
    assert [h.chunk_id for h in result.hits] == expected
    assert chroma_ids(lib, "c") == sqlite_ids(lib, "c")


def test_cancel_mid_sync_then_sync_again_gives_exact_counts(
    tmp_path: Path, embedder: Embedder
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(40):
        (docs / f"note{i:02}.txt").write_text(
            f"Note {i}. " + " ".join(f"item{i}-{k} is stored on shelf {k}." for k in range(60)),
            encoding="utf-8",
        )
    reference = library(tmp_path / "ref", embedder)
    reference.create("c", [str(docs)])
    expected = run_sync(reference, "c").counts

    lib = library(tmp_path / "index", embedder)
    lib.create("c", [str(docs)])
    events = lib.sync("c")
    reading = 0
    for event in events:
        if isinstance(event, IndexProgress) and event.phase == "reading":
            reading += 1
            if reading == 12:
                break
    events.close()
    partial = lib.info("c").counts
    assert 0 < partial["indexed"] < 40
    done = run_sync(lib, "c")
    assert done.counts == expected
    assert chroma_ids(lib, "c") == sqlite_ids(lib, "c")
    assert len(sqlite_ids(lib, "c")) == expected["chunks"]


def test_slow_file_times_out_and_the_next_file_still_indexes(
    tmp_path: Path, embedder: Embedder
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    # 12 million values to flatten: seconds of work for the reader, far past a 1 s limit.
    with (docs / "a_slow.json").open("w") as fh:
        fh.write("[" + ",".join(["[1,2,3,4,5,6,7,8]"] * 1_500_000) + "]")
    (docs / "b_small.md").write_text("# Small\n\nThe small file is fine.\n", encoding="utf-8")
    lib = library(tmp_path / "index", embedder, **{"documents.parse_timeout_s": 1.0})
    lib.create("c", [str(docs)])
    run_sync(lib, "c")
    rows = {Path(r.path).name: r for r in lib.documents("c")}
    assert rows["a_slow.json"].status == "failed"
    assert "longer than 1 s" in (rows["a_slow.json"].reason or "")
    assert rows["b_small.md"].status == "indexed"


def test_memory_cap_turns_a_hungry_file_into_a_failure(tmp_path: Path, embedder: Embedder) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    with (docs / "big.json").open("w") as fh:  # 100 MB of numbers: > 256 MB once read
        fh.write("[" + "1," * 50_000_000 + "1]")
    (docs / "ok.json").write_text('{"answer": "forty-two"}')
    lib = library(tmp_path / "index", embedder, **{"documents.parse_memory_mb": 256})
    lib.create("c", [str(docs)])
    run_sync(lib, "c")
    rows = {Path(r.path).name: r for r in lib.documents("c")}
    assert rows["big.json"].status == "failed"
    assert "more than 256 MB" in (rows["big.json"].reason or ""), rows["big.json"].reason
    assert rows["ok.json"].status == "indexed"


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    attempts: list[Any] = []
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            attempts.append(address)
            raise OSError("network use during an offline test")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    yield attempts


def test_indexing_and_search_open_no_network_connection(
    tmp_path: Path, embedder: Embedder, no_network: list[Any]
) -> None:
    good_files(tmp_path / "docs")
    lib = library(tmp_path / "index", embedder)
    lib.create("c", [str(tmp_path / "docs")])
    run_sync(lib, "c")
    assert lib.search("c", "vault code word").hits
    assert no_network == []


def test_near_duplicates_collapse_and_bm25_finds_rare_identifiers(
    tmp_path: Path, embedder: Embedder
) -> None:
    docs = tmp_path / "docs"
    good_files(docs)
    shutil.copy(docs / "garden.md", docs / "garden-copy.md")
    (docs / "parts.txt").write_text(
        "Spare parts list.\nThe replacement gasket is part number QX-77813.\n"
        "The pump housing is part number QX-20455.\n",
        encoding="utf-8",
    )
    lib = library(tmp_path / "index", embedder)
    lib.create("c", [str(docs)])
    run_sync(lib, "c")
    hits = lib.search("c", "how do I get rid of aphids", min_score=0.0).hits
    aphids = [h for h in hits if "Aphids" in h.text]
    assert len(aphids) == 1, "the copied file's passage is collapsed into the first"
    bm25 = lib.search("c", "QX-77813", mode="bm25").hits
    assert bm25 and "QX-77813" in bm25[0].text and bm25[0].bm25_rank == 1
    hybrid = lib.search("c", "QX-77813", min_score=0.0).hits
    assert "QX-77813" in hybrid[0].text


def test_documents_only_mode_says_nothing_relevant_without_a_model(
    tmp_path: Path, embedder: Embedder
) -> None:
    from engine.documents.answer import answer
    from engine.documents.events import NothingRelevant
    from engine.runtime.params import SamplingParams

    good_files(tmp_path / "docs")
    lib = library(tmp_path / "index", embedder)
    lib.create("c", [str(tmp_path / "docs")])
    run_sync(lib, "c")
    runtime = new_runtime()  # never loaded: using it would raise
    events = list(
        answer(
            runtime,
            lib,
            "c",
            "Which planet has the largest moon?",
            sampling=SamplingParams(),
            system=None,
            documents_only=True,
        )
    )
    assert len(events) == 1 and isinstance(events[0], NothingRelevant)
    assert runtime.worker_pid is None


def test_strict_answers_come_checked_with_unsupported_sentences_marked(
    tmp_path: Path, embedder: Embedder
) -> None:
    """documents.strict: no text before the check, then the whole answer as one piece, its
    unsupported sentences struck through, then Done, then the check itself."""
    from engine import models
    from engine.documents import grounding
    from engine.documents.answer import answer
    from engine.documents.events import Grounded, Retrieved
    from engine.runtime import Done, TextPiece
    from engine.runtime.params import LoadParams, SamplingParams

    good_files(tmp_path / "docs")
    lib = library(tmp_path / "index", embedder, **{"documents.strict": True})
    lib.create("c", [str(tmp_path / "docs")])
    run_sync(lib, "c")
    runtime = new_runtime()
    try:
        events = list(
            answer(
                runtime,
                lib,
                "c",
                "How many days per week may employees work remotely, and why?",
                sampling=SamplingParams(temperature=0.0, max_tokens=60),
                system=None,
                model=LoadParams(model_path=str(models.BUNDLED_CHAT.path()), context_length=2048),
            )
        )
    finally:
        runtime.close()
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "Retrieved" and isinstance(events[0], Retrieved)
    assert kinds[-3:] == ["TextPiece", "Done", "Grounded"] and kinds.count("TextPiece") == 1
    shown = events[-3].text
    checked = events[-1].grounding
    assert isinstance(events[-3], TextPiece) and isinstance(events[-2], Done)
    assert isinstance(events[-1], Grounded)
    written = shown.replace(grounding.UNSUPPORTED_MARK, "").replace("~~", "")
    assert shown == grounding.mark(written, checked)
    for s in checked.sentences:
        assert written[s.start : s.end] == s.text
        if s.verdict == "unsupported":
            assert f"~~{s.text}~~{grounding.UNSUPPORTED_MARK}" in shown


def test_a_second_writer_is_refused_while_one_indexes(tmp_path: Path, embedder: Embedder) -> None:
    from engine.errors import IndexBusy

    good_files(tmp_path / "docs")
    lib = library(tmp_path / "index", embedder)
    lib.create("c", [str(tmp_path / "docs")])
    first = lib.sync("c")
    next(first)
    other = library(tmp_path / "index", embedder)
    with pytest.raises(IndexBusy):
        next(other.sync("c"))
    first.close()
    assert run_sync(other, "c").indexed == 3


def test_a_huge_single_line_file_indexes_with_progress_beside_small_ones(
    tmp_path: Path, embedder: Embedder
) -> None:
    """Issue 34's hostile set, scaled down: a text file that is one long line (here about 480
    passages' worth; the user's was 20 MB) beside 15 small files. Its passages are embedded a
    slice at a time with progress between slices ("embedding: 384 of 496 passages"), not in
    one silent call, and every file indexes; a sentence near its end is found in it."""
    import random

    from engine.documents import indexer

    rng = random.Random(7)
    words = [
        "the",
        "ferry",
        "harbour",
        "tide",
        "granite",
        "lantern",
        "rope",
        "window",
        "stair",
        "oil",
        "wick",
        "brass",
    ]
    body = " ".join(rng.choice(words) for _ in range(70_000))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "one-line.txt").write_text(
        body + " The quartermaster Ysolde Brennan relit the beacon in 1887. " + body[:5000],
        encoding="utf-8",
    )
    for n in range(15):
        (docs / f"note-{n:02}.txt").write_text(
            f"Note {n}: the shed key number {n * 7 + 3} hangs by the door.\n", encoding="utf-8"
        )
    lib = library(tmp_path / "index", embedder)
    lib.create("c", [str(docs)])
    events = list(lib.sync("c"))
    done = events[-1]
    assert isinstance(done, IndexDone) and (done.indexed, done.failed) == (16, 0), done
    slices = [
        e
        for e in events
        if isinstance(e, IndexProgress) and (e.detail or "").startswith("embedding: ")
    ]
    big = next(r for r in lib.documents("c") if r.path.endswith("one-line.txt"))
    assert big.chunk_count > 3 * indexer.EMBED_BATCH_CHUNKS
    mine = [e for e in slices if (e.current or "").endswith("one-line.txt")]
    assert len(mine) >= big.chunk_count // indexer.EMBED_BATCH_CHUNKS  # every slice
    assert [e.chunks for e in mine] == sorted(e.chunks for e in mine)
    hit = lib.search("c", "who relit the beacon").hits[0]
    assert hit.path.endswith("one-line.txt") and "Ysolde Brennan" in hit.text
