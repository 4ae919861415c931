"""`hearth docs ...` and `hearth ask --docs` as real subprocesses, on real files."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests import doc_files

HEARTH = [sys.executable, "-m", "app.cli"]
PAGES = [
    "Annual report. Revenue grew by nine percent in the northern region.",
    "Staffing. The clinic hired four nurses in March.",
    "Security. The vault code word is PELICAN. It is changed every Tuesday.",
]


def run(
    *args: str, timeout: float = 240, preexec: Callable[[], None] | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run(
        [*HEARTH, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        preexec_fn=preexec,
    )


def make_docs(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    doc_files.make_pdf(folder / "report.pdf", PAGES)
    doc_files.make_docx(
        folder / "policy.docx",
        [
            ("Remote work", ["Staff may work from home two days per week."]),
            ("Expenses", ["Hotels are paid up to 150 euros per night."]),
        ],
        page_break_between=True,
    )
    return folder


def test_docs_add_list_search_with_json(tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs")
    added = run("docs", "add", "work", str(docs), "--json")
    assert added.returncode == 0, added.stderr
    done = json.loads(added.stdout)
    assert (done["indexed"], done["failed"], done["skipped"]) == (2, 0, 0)

    listed = json.loads(run("docs", "list", "--json").stdout)
    assert [c["name"] for c in listed] == ["work"] and listed[0]["indexed"] == 2
    files = json.loads(run("docs", "list", "work", "--json").stdout)
    assert {Path(f["path"]).name: f["status"] for f in files} == {
        "report.pdf": "indexed",
        "policy.docx": "indexed",
    }

    found = run("docs", "search", "work", "hotel price per night", "--json")
    hit = json.loads(found.stdout)["hits"][0]
    assert (Path(hit["path"]).name, hit["page"], hit["heading"]) == ("policy.docx", 2, "Expenses")
    plain = run("docs", "search", "work", "hotel price per night")
    assert "policy.docx (page 2 · Expenses)" in plain.stdout

    assert run("docs", "search", "nope", "x").returncode == 1
    removed = run("docs", "remove", "work")
    assert removed.returncode == 0 and docs.exists() and (docs / "report.pdf").exists()
    assert json.loads(run("docs", "list", "--json").stdout) == []


def test_docs_embedder_re_embeds_a_collection_and_search_still_finds(tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs")
    assert run("docs", "add", "work", str(docs), "--json").returncode == 0
    bad = run("docs", "embedder", "work", "nomic-embed-text")
    assert bad.returncode != 0 and "bundled:bge-small-en-v1.5-int8" in bad.stderr
    changed = run("docs", "embedder", "work", "bundled:bge-small-en-v1.5-int8", "--json")
    assert changed.returncode == 0, changed.stderr
    done = json.loads(changed.stdout)
    assert (done["unchanged"], done["reembedded"]) == (2, done["counts"]["chunks"])
    listed = json.loads(run("docs", "list", "--json").stdout)[0]
    assert (listed["embedder"], listed["embedder_next"]) == ("bundled:bge-small-en-v1.5-int8", None)
    hit = json.loads(run("docs", "search", "work", "hotel price per night", "--json").stdout)
    assert Path(hit["hits"][0]["path"]).name == "policy.docx"
    again = run("docs", "embedder", "work", "bundled:bge-small-en-v1.5-int8")
    assert again.returncode == 0 and "already uses" in again.stderr


def test_a_scanned_page_is_found_and_its_source_says_ocr(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    page = doc_files.scan_page(doc_files.real_prose()[:2], angle=2)
    doc_files.make_image_pdf(docs / "scan.pdf", [page])
    added = run("docs", "add", "scans", str(docs), "--json")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["indexed"] == 1
    found = run("docs", "search", "scans", "a free, copyleft license for software", "--json")
    hit = json.loads(found.stdout)["hits"][0]
    assert (Path(hit["path"]).name, hit["page"], hit["ocr"]) == ("scan.pdf", 1, True)
    plain = run("docs", "search", "scans", "a free, copyleft license for software")
    assert "scan.pdf (page 1 · OCR)" in plain.stdout


def test_ask_with_docs_answers_from_the_document_and_cites_file_and_page(tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs")
    assert run("docs", "add", "work", str(docs)).returncode == 0
    result = run(
        "ask",
        "--docs",
        "work",
        "What is the vault code word?",
        "--temperature",
        "0",
        "--max-tokens",
        "48",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    first = doc["sources"][0]
    assert (first["file"], first["page"]) == ("report.pdf", 3)
    assert "PELICAN" in first["quote"]
    assert "PELICAN" in doc["answer"].upper()
    checked = doc["grounding"]  # each answer sentence checked against the sources
    assert checked["summary"].endswith(".") and sum(checked["counts"].values()) >= 1
    spans = [doc["answer"][s["start"] : s["end"]] for s in checked["sentences"]]
    assert spans == [s["text"] for s in checked["sentences"]]

    text = run(
        "ask",
        "--docs",
        "work",
        "What is the vault code word?",
        "--temperature",
        "0",
        "--max-tokens",
        "48",
    )
    assert "Sources:" in text.stdout and "report.pdf, page 3" in text.stdout
    assert "Checked against the sources:" in text.stdout
    assert "Evidence from the sources (quoted as written" in text.stdout  # a small model


def test_documents_only_refuses_to_guess(tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs")
    assert run("docs", "add", "work", str(docs)).returncode == 0
    result = run(
        "ask", "--docs", "work", "--docs-only", "Which planet has the most moons?", "--json"
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["sources"] == [] and "found nothing" in doc["answer"]
    assert doc["stats"] is None, "no model answered"


def _expected_chunks(folder: Path) -> int:
    from engine.documents import loaders
    from engine.documents.chunking import chunk_text
    from engine.documents.embedder import Embedder

    tokenizer = Embedder().tokenizer
    total = 0
    for path in folder.iterdir():
        ex = loaders.load(path, "text")
        total += len(
            chunk_text(ex.text, ex.pages, ex.headings, tokenizer, max_tokens=200, overlap=40)
        )
    return total


def test_kill_9_during_indexing_then_sync_leaves_no_duplicates(
    tmp_path: Path, hearth_home: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(120):
        (docs / f"memo{i:03}.txt").write_text(
            f"Memo {i}. " + " ".join(f"Order {i}-{k} ships from depot {k % 7}." for k in range(90)),
            encoding="utf-8",
        )
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.Popen(
        [*HEARTH, "docs", "add", "memos", str(docs)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    db = hearth_home / "data" / "documents" / "documents.sqlite"
    indexed = 0
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists():
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
                    indexed = con.execute(
                        "SELECT COUNT(*) FROM documents WHERE status = 'indexed'"
                    ).fetchone()[0]
            except sqlite3.OperationalError:
                indexed = 0
        if indexed >= 15:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the indexer finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert 15 <= indexed < 120

    result = run("docs", "sync", "memos", "--json")
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout)["counts"]
    assert counts["indexed"] == 120 and counts["failed"] == 0
    assert counts["chunks"] == _expected_chunks(docs)
    with sqlite3.connect(db) as con:
        ids = {r[0] for r in con.execute("SELECT id FROM chunks")}
        dupes = con.execute(
            "SELECT COUNT(*) FROM (SELECT document_id, seq FROM chunks GROUP "
            "BY document_id, seq HAVING COUNT(*) > 1)"
        ).fetchone()[0]
    assert dupes == 0 and len(ids) == counts["chunks"]

    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(
        path=str(db.parent / "vectors"), settings=Settings(anonymized_telemetry=False)
    )
    [col] = client.list_collections()
    assert {int(i) for i in col.get(include=[])["ids"]} == ids


def _drop_root_file_access() -> None:
    """In the child: root without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH obeys file modes like
    any user (dropped from the bounding set before exec, so the new program never has them)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_unreadable_file_fails_with_permission_denied_and_the_rest_index(tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs")
    secret = docs / "secret.txt"
    secret.write_text("nobody may read this", encoding="utf-8")
    secret.chmod(0)
    try:
        preexec = _drop_root_file_access if os.geteuid() == 0 else None
        result = run("docs", "add", "work", str(docs), "--json", preexec=preexec)
    finally:
        secret.chmod(0o600)
    assert result.returncode == 0, result.stderr
    problems = {Path(p["path"]).name: p for p in json.loads(result.stdout)["problems"]}
    assert problems["secret.txt"]["status"] == "failed"
    assert "permission denied" in problems["secret.txt"]["reason"]
    assert json.loads(result.stdout)["indexed"] == 2


def test_answers_are_chained_in_the_audit_trail_and_an_edit_is_caught(tmp_path: Path) -> None:
    """`hearth ask --docs` leaves a record with the model's and each source document's
    SHA-256 and no content; `hearth audit verify` passes, then fails on an edited record, and
    a noted head catches a cut end."""
    import hashlib

    docs = make_docs(tmp_path / "docs")
    assert run("docs", "add", "work", str(docs)).returncode == 0
    for question in ("What is the vault code word?", "How many nurses were hired?"):
        asked = run("ask", "--docs", "work", question, "--temperature", "0", "--max-tokens", "8")
        assert asked.returncode == 0, asked.stderr
    records = json.loads(run("audit", "show", "--json").stdout)
    assert [r["seq"] for r in records] == [1, 2]
    first = records[0]
    from engine import models

    assert first["model_sha256"] == models.BUNDLED_CHAT.sha256
    assert first["collections"] == ["work"] and first["via"] == "ask"
    report = next(s for s in first["sources"] if Path(s["path"]).name == "report.pdf")
    assert report["sha256"] == hashlib.sha256((docs / "report.pdf").read_bytes()).hexdigest()
    assert report["page"] == 3 and report["chars"][0] < report["chars"][1]
    log = Path(os.environ["HEARTH_HOME"]) / "logs" / "audit.jsonl"
    assert "PELICAN" not in log.read_text() and "vault" not in log.read_text()

    verified = run("audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "audit.jsonl: intact, 2 records" in verified.stdout
    head = run("audit", "head").stdout.split()[0]  # audit.jsonl=2:<sha256>
    assert head.startswith("audit.jsonl=2:")

    rows = log.read_text().splitlines()
    log.write_text("\n".join([rows[0].replace('"page":3', '"page":2'), rows[1]]) + "\n")
    broken = run("audit", "verify")
    assert broken.returncode == 1 and "BROKEN" in broken.stdout and "seq 2" in broken.stdout
    exported = run("audit", "export", str(tmp_path / "for-auditor"))
    assert exported.returncode == 1
    summary = json.loads((tmp_path / "for-auditor" / "verification.json").read_text())
    assert summary["trails"][0]["ok"] is False

    log.write_text(rows[0] + "\n")  # the newest record cut: only the noted head shows it
    assert run("audit", "verify").returncode == 0
    cut = run("audit", "verify", "--head", head)
    assert cut.returncode == 1 and "no longer in the trail" in cut.stdout
