"""Shared collections against a real Chroma server (`chroma run`, 127.0.0.1 only): a collection
indexed from real files on one "laptop", published, attached and searched on another with the
same citations; the policy refusing before any request; the server down, restarted mid-query;
tokens refused, read-only and accepted (through a token-checking proxy: this chromadb's server
checks none itself, see tests/chroma_server.py)."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.documents.embedder import Embedder
from engine.documents.events import IndexDone, Published
from engine.documents.library import DocumentLibrary
from engine.errors import DocumentError, ServerAuthFailed, ServerError, ServerNotAllowed
from engine.settings import Settings
from tests import doc_files
from tests.chroma_server import AuthProxy, ChromaProcess

PAGES = [
    "Quarterly report for the board. Revenue grew by nine percent in the northern region.",
    "Staffing. The clinic hired four nurses in March and two pharmacists in April.",
    "Security. The vault code word is PELICAN and it is changed every Tuesday by the "
    "facilities manager.",
]
QUESTION = "What is the vault code word?"


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="module")
def chroma(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaProcess]:
    with ChromaProcess(tmp_path_factory.mktemp("chroma") / "db") as server:
        yield server


_OPEN: list[DocumentLibrary] = []


@pytest.fixture(autouse=True)
def close_libraries() -> Iterator[None]:
    """Libraries keep their Chroma connections open between searches; closed after each test."""
    yield
    while _OPEN:
        _OPEN.pop().close()


def library(folder: Path, settings: Settings, embedder: Embedder) -> DocumentLibrary:
    lib = DocumentLibrary(folder, settings, embedder)
    _OPEN.append(lib)
    return lib


def settings_for(*urls: str, **overrides: Any) -> Settings:
    settings = Settings.load(None)
    settings.set("remote.chroma_servers", list(urls))
    settings.set("remote.timeout_s", 30.0)
    for key, value in overrides.items():
        settings.set(key.replace("__", "."), value)
    return settings


def write_files(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    doc_files.make_pdf(folder / "report.pdf", PAGES)
    doc_files.make_docx(
        folder / "policy.docx",
        [
            ("Remote work", ["Employees may work remotely two days per week."]),
            ("Expenses", ["Travel expenses above 500 euros need approval from a director."]),
        ],
        page_break_between=True,
    )
    (folder / "garden.md").write_text(
        "# Garden\n\nTomatoes need full sun.\n\n## Pests\n\nAphids are washed off with "
        "soapy water.\n",
        encoding="utf-8",
    )
    return folder


def indexed(folder: Path, files: Path, settings: Settings, embedder: Embedder) -> DocumentLibrary:
    lib = library(folder, settings, embedder)
    lib.create("Team docs", [str(files)])
    assert next(e for e in lib.sync("Team docs") if isinstance(e, IndexDone)).indexed == 3
    return lib


def published(lib: DocumentLibrary, url: str, remote_name: str) -> Published:
    events = list(lib.publish("Team docs", url, remote_name))
    assert isinstance(events[-1], Published)
    return events[-1]


def attached(folder: Path, settings: Settings, embedder: Embedder, url: str, name: str) -> Any:
    lib = library(folder, settings, embedder)
    done = [e for e in lib.attach(url, name, "Shared docs") if isinstance(e, IndexDone)]
    assert len(done) == 1
    return lib


def test_a_collection_published_from_one_laptop_is_searched_on_another_with_its_citations(
    tmp_path: Path, chroma: ChromaProcess, embedder: Embedder
) -> None:
    settings = settings_for(chroma.url)
    files = write_files(tmp_path / "files")
    laptop_a = indexed(tmp_path / "a", files, settings, embedder)
    local_chunks = laptop_a.info("Team docs").counts["chunks"]
    done = published(laptop_a, chroma.url, "team-docs")
    assert done.passages == local_chunks and done.removed == 0

    # What the server holds: Hearth's vectors and citation metadata, the embedder recorded.
    import chromadb

    client = chromadb.HttpClient(host="127.0.0.1", port=chroma.port)
    col = client.get_collection("team-docs", embedding_function=None)
    assert col.count() == local_chunks
    assert col.metadata["hearth:embedder"] == embedder.model_id
    assert col.metadata["hearth:dimensions"] == 384
    sample = col.get(limit=1, include=["embeddings", "metadatas", "documents"])
    assert len(sample["embeddings"][0]) == 384
    assert {"path", "file", "sha256", "seq", "char_start", "char_end"} <= set(
        sample["metadatas"][0]
    )
    client.close()

    # Another collection (here another data folder) may not publish over it.
    laptop_c = indexed(tmp_path / "c", files, settings, embedder)
    with pytest.raises(DocumentError, match="published from another collection"):
        list(laptop_c.publish("Team docs", chroma.url, "team-docs"))
    assert published(laptop_a, chroma.url, "team-docs").passages == local_chunks  # its own: yes

    laptop_b = attached(tmp_path / "b", settings, embedder, chroma.url, "team-docs")
    info = laptop_b.info("Shared docs")
    assert info.shared == f"{chroma.url} team-docs"
    assert info.counts["chunks"] == local_chunks and info.counts["indexed"] == 3
    assert {Path(d.path).name for d in laptop_b.documents("Shared docs")} == {
        "report.pdf",
        "policy.docx",
        "garden.md",
    }

    here, there = laptop_a.search("Team docs", QUESTION), laptop_b.search("Shared docs", QUESTION)
    assert there.hits, there.notes
    top = there.hits[0]
    assert "PELICAN" in top.text
    assert Path(top.path).name == "report.pdf" and top.page == 3
    assert top.sha256 == hashlib.sha256((files / "report.pdf").read_bytes()).hexdigest()
    mine = here.hits[0]
    assert (top.text, top.char_start, top.char_end, top.line_start) == (
        mine.text,
        mine.char_start,
        mine.char_end,
        mine.line_start,
    )
    # The same passage, scored twice: on the server from the vectors it holds, here from the
    # local ones. Float32 embeddings (onnxruntime, or torch forced to it) agree to 1e-4. On a
    # CPU with native bfloat16 the embedder computes in it, which keeps 8 significant bits: a
    # cosine of unit vectors can then move by up to about 2^-8 (0.0039) between two
    # computations (0.00026 seen on a Sapphire Rapids Xeon, issue 33).
    tolerance = 1e-4 if embedder.dtype.startswith("float32") else 4e-3
    assert top.similarity == pytest.approx(mine.similarity, abs=tolerance)
    assert top.vector_rank == 1 and top.bm25_rank is not None

    # Word matching runs on the local cache; its hits still get their exact similarity
    # (their vectors fetched from the server), so the relevance threshold means the same.
    words = laptop_b.search("Shared docs", "PELICAN", mode="bm25")
    assert words.hits and words.hits[0].similarity > 0.1
    expenses = laptop_b.search("Shared docs", "who approves travel expenses?")
    assert Path(expenses.hits[0].path).name == "policy.docx"


def test_publishing_again_removes_what_went_and_the_cache_is_rebuilt_from_the_server(
    tmp_path: Path, chroma: ChromaProcess, embedder: Embedder
) -> None:
    settings = settings_for(chroma.url)
    files = write_files(tmp_path / "files")
    laptop_a = indexed(tmp_path / "a", files, settings, embedder)
    published(laptop_a, chroma.url, "team-docs-2")
    laptop_b = attached(tmp_path / "b", settings, embedder, chroma.url, "team-docs-2")

    (files / "garden.md").unlink()
    list(laptop_a.sync("Team docs"))
    again = published(laptop_a, chroma.url, "team-docs-2")
    assert again.removed >= 1 and again.passages == laptop_a.info("Team docs").counts["chunks"]

    list(laptop_b.sync("Shared docs"))
    assert {Path(d.path).name for d in laptop_b.documents("Shared docs")} == {
        "report.pdf",
        "policy.docx",
    }
    # The cache is only a cache: emptied, a sync brings every passage back.
    import sqlite3

    db = sqlite3.connect(tmp_path / "b" / "documents.sqlite")
    with db:
        db.execute("DELETE FROM chunks")
        db.execute("DELETE FROM documents")
    db.close()
    assert laptop_b.info("Shared docs").counts["chunks"] == 0
    list(laptop_b.sync("Shared docs"))
    assert laptop_b.info("Shared docs").counts["chunks"] == again.passages
    assert "PELICAN" in laptop_b.search("Shared docs", QUESTION).hits[0].text

    # Such a collection's files are the publisher's business.
    with pytest.raises(DocumentError, match="shared from"):
        laptop_b.add("Shared docs", [str(files)])


def test_a_collection_from_another_embedder_or_not_from_hearth_is_refused(
    tmp_path: Path, chroma: ChromaProcess, embedder: Embedder
) -> None:
    import chromadb

    client = chromadb.HttpClient(host="127.0.0.1", port=chroma.port)
    meta = {"hearth:layout": 1, "hearth:embedder": "BAAI/bge-large-en", "hearth:dimensions": 1024}
    other = client.create_collection("other-embedder", metadata=meta, embedding_function=None)
    other.add(ids=["1"], embeddings=[[0.1] * 1024], documents=["x"], metadatas=[{"path": "/x"}])
    client.create_collection("not-hearth", embedding_function=None)
    client.close()

    settings = settings_for(chroma.url)
    lib = library(tmp_path / "b", settings, embedder)
    with pytest.raises(DocumentError, match="BAAI/bge-large-en"):
        list(lib.attach(chroma.url, "other-embedder"))
    with pytest.raises(DocumentError, match="not published by Hearth"):
        list(lib.attach(chroma.url, "not-hearth"))
    assert lib.collections() == []  # all or nothing

    laptop_a = indexed(tmp_path / "a", write_files(tmp_path / "files"), settings, embedder)
    with pytest.raises(DocumentError, match="would not be comparable"):
        list(laptop_a.publish("Team docs", chroma.url, "other-embedder"))
    with pytest.raises(ServerError, match="no such collection"):
        list(lib.attach(chroma.url, "never-published"))


def test_servers_not_allowed_are_refused_before_any_request(
    tmp_path: Path, chroma: ChromaProcess, embedder: Embedder
) -> None:
    # A listener that never accepts: any connection attempt would sit in its queue.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    laptop_a = indexed(tmp_path / "a", write_files(tmp_path / "files"), settings_for(url), embedder)
    try:
        for settings, why in [
            (settings_for(url, remote__allowed=False), "turned off"),
            (settings_for(url, privacy__offline_mode=True), "Offline mode"),
            (settings_for(), "not one of the configured servers"),
            (settings_for(url, remote__allowed_hosts=["chroma.example.org"]), "allowed hosts"),
        ]:
            laptop_a.settings = settings
            with pytest.raises(ServerNotAllowed, match=why):
                list(laptop_a.publish("Team docs", url, "team-docs"))
            other = library(tmp_path / "b", settings, embedder)
            with pytest.raises(ServerNotAllowed, match=why):
                list(other.attach(url, "team-docs"))
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever connected
        # Control: allowed, the same address is connected to (so the check above can fail);
        # it never answers, which ends in a timeout, not a hang.
        laptop_a.settings = settings_for(url, remote__timeout_s=1.0)
        with pytest.raises(ServerError, match="did not answer in time"):
            list(laptop_a.publish("Team docs", url, "team-docs"))
        conn, _ = listener.accept()
        conn.close()
    finally:
        listener.close()

    settings = settings_for(chroma.url)
    laptop_b = library(tmp_path / "c", settings, embedder)
    laptop_a.settings = settings
    published(laptop_a, chroma.url, "policy-docs")
    list(laptop_b.attach(chroma.url, "policy-docs", "Shared docs"))
    # Turned off after attaching: searching is refused, the local copy stays.
    laptop_b.settings = settings_for(chroma.url, remote__allowed=False)
    with pytest.raises(ServerNotAllowed):
        laptop_b.search("Shared docs", QUESTION)
    assert laptop_b.info("Shared docs").counts["chunks"] > 0


def test_server_down_ends_in_a_clear_error_and_keeps_the_local_copy(
    tmp_path: Path, embedder: Embedder
) -> None:
    with ChromaProcess(tmp_path / "chroma") as server:
        settings = settings_for(server.url, remote__timeout_s=4.0)
        laptop_a = indexed(tmp_path / "a", write_files(tmp_path / "files"), settings, embedder)
        published(laptop_a, server.url, "team-docs")
        laptop_b = attached(tmp_path / "b", settings, embedder, server.url, "team-docs")
        chunks = laptop_b.info("Shared docs").counts["chunks"]
        server.kill()
        for attempt in (
            lambda: laptop_b.search("Shared docs", QUESTION),
            lambda: list(laptop_b.sync("Shared docs")),
            lambda: list(laptop_a.publish("Team docs", server.url, "team-docs")),
        ):
            t0 = time.monotonic()
            with pytest.raises(ServerError, match="could not reach"):
                attempt()
            assert time.monotonic() - t0 < 15  # retried within min(timeout, 20 s), no more
        assert laptop_b.info("Shared docs").counts["chunks"] == chunks
        assert laptop_a.info("Team docs").counts["chunks"] == chunks


def test_a_server_restarted_during_queries_answers_after_a_retry_and_nothing_hangs(
    tmp_path: Path, embedder: Embedder
) -> None:
    with ChromaProcess(tmp_path / "chroma") as server:
        settings = settings_for(server.url, remote__timeout_s=30.0)
        laptop_a = indexed(tmp_path / "a", write_files(tmp_path / "files"), settings, embedder)
        published(laptop_a, server.url, "team-docs")
        laptop_b = attached(tmp_path / "b", settings, embedder, server.url, "team-docs")

        outcomes: list[tuple[str, float]] = []
        stop = threading.Event()

        def ask() -> None:
            while not stop.is_set():
                t0 = time.monotonic()
                try:
                    hits = laptop_b.search("Shared docs", QUESTION).hits
                    label = "ok" if "PELICAN" in hits[0].text else "wrong"
                except ServerError as exc:
                    label = f"error: {exc.user_message}"
                outcomes.append((label, time.monotonic() - t0))

        asker = threading.Thread(target=ask, name="test-asker")
        asker.start()
        try:
            time.sleep(1.0)
            server.restart()  # SIGTERM, then the same folder and port again
            restarted = len(outcomes)
            time.sleep(1.0)
        finally:
            stop.set()
            asker.join(timeout=60)
        assert not asker.is_alive(), "a search hung"
        assert outcomes and all(o == "ok" or "Chroma server" in o for o, _ in outcomes), outcomes
        assert max(seconds for _, seconds in outcomes) < 45
        assert any(o == "ok" for o, _ in outcomes[restarted:]), outcomes

        # Down when the question is asked, back a moment later: the retry gets the answer.
        server.kill()
        back = threading.Thread(target=lambda: (time.sleep(0.5), server.start()), name="test-up")
        back.start()
        try:
            t0 = time.monotonic()
            hits = laptop_b.search("Shared docs", QUESTION).hits
            assert "PELICAN" in hits[0].text and time.monotonic() - t0 < 30
        finally:
            back.join(timeout=120)


def test_tokens_wrong_read_only_and_writing_through_a_token_checking_proxy(
    tmp_path: Path, chroma: ChromaProcess, embedder: Embedder, keyring_file: None
) -> None:
    from engine.remote import servers

    with AuthProxy(chroma.url, {"reader-token": "read", "writer-token": "write"}) as proxy:
        settings = settings_for(proxy.url)
        server = servers.parse(proxy.url)
        laptop_a = indexed(tmp_path / "a", write_files(tmp_path / "files"), settings, embedder)
        laptop_b = library(tmp_path / "b", settings, embedder)

        with pytest.raises(ServerAuthFailed, match="refused Hearth's token"):  # none at all
            list(laptop_a.publish("Team docs", proxy.url, "token-docs"))
        servers.set_token(server, "guessed-token")
        with pytest.raises(ServerAuthFailed, match="refused Hearth's token"):
            list(laptop_b.attach(proxy.url, "token-docs"))

        servers.set_token(server, "reader-token")
        with pytest.raises(ServerAuthFailed, match="refused writing"):
            list(laptop_a.publish("Team docs", proxy.url, "token-docs"))
        assert laptop_a.info("Team docs").counts["chunks"] > 0  # nothing lost here

        servers.set_token(server, "writer-token")
        published(laptop_a, proxy.url, "token-docs")

        servers.set_token(server, "reader-token")  # reading needs no more
        list(laptop_b.attach(proxy.url, "token-docs", "Shared docs"))
        assert "PELICAN" in laptop_b.search("Shared docs", QUESTION).hits[0].text
        assert any(status == 403 for _, _, status in proxy.seen)
        assert all(status != 401 for _, _, status in proxy.seen[-5:])


def test_the_windows_child_processes_sync_and_search_a_shared_collection(
    tmp_path: Path, chroma: ChromaProcess, embedder: Embedder
) -> None:
    from engine.documents.isolated import IsolatedLibrary

    settings = settings_for(chroma.url)
    laptop_a = indexed(tmp_path / "a", write_files(tmp_path / "files"), settings, embedder)
    published(laptop_a, chroma.url, "window-docs")
    attached(tmp_path / "b", settings, embedder, chroma.url, "window-docs")
    window = IsolatedLibrary(library(tmp_path / "b", settings, embedder))
    try:
        done = [e for e in window.sync("Shared docs") if isinstance(e, IndexDone)]
        assert done and done[0].chunks_added == laptop_a.info("Team docs").counts["chunks"]
        hit = window.search("Shared docs", QUESTION).hits[0]
        assert "PELICAN" in hit.text and Path(hit.path).name == "report.pdf"
        window.settings = settings_for(chroma.url, remote__allowed=False)
        with pytest.raises(ServerNotAllowed):  # the child's error, as the same class
            window.search("Shared docs", QUESTION)
    finally:
        window.close()
