"""Kills lose nothing: `hearth docs add` killed with SIGKILL at moments chosen by its progress,
again and again, then a sync to the end, and the index checked against a clean run's.

    .venv/bin/python bench/soak_kill_index.py [--kills 50] [--files 60] [--json out.json]

Kill moments, in turn (wall-clock kills mostly land before the first commit on a loaded
machine and prove little, so each waits for its moment by watching the run):
- `first-commit`: as soon as SQLite holds the first indexed file;
- `mid-batch`: once SQLite holds a chosen number of indexed files (files of one embedding batch
  are committed one after another, so this lands between a batch's commits);
- `vectors`: 0-50 ms after the command says "updating the vector index" (chromadb writing).
Each round starts from an empty HEARTH_HOME and kills the command four times, in that order
(a mid-batch target is always beyond what the killed runs already committed; a round ends early
when a run finishes before its moment), then syncs to the end and checks: SQLite
`integrity_check` ok, no duplicate (document, seq) chunks, no chunk without its document, the
chromadb ids equal SQLite's chunk ids, and the document, passage and status counts equal those
of a clean run of the same files. Prints a table and, with --json, writes the numbers.
The files are real text: this repository's docs and the licence texts Debian ships.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MOMENTS = ("first-commit", "mid-batch", "vectors")
ROUND = ("first-commit", "mid-batch", "mid-batch", "vectors")  # the kills of one round, in order


def make_corpus(folder: Path, count: int) -> None:
    sources = sorted(ROOT.glob("docs/*.md")) + sorted(Path("/usr/share/common-licenses").glob("*"))
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in sources if p.is_file()]
    folder.mkdir(parents=True)
    for i in range(count):
        text = texts[i % len(texts)]
        # Different files: each a different slice, so none is a duplicate of another.
        start = (i * 997) % max(1, len(text) - 4000)
        (folder / f"doc-{i:03d}.md").write_text(f"# Part {i}\n\n{text[start : start + 6000]}")


def env_for(home: Path) -> dict[str, str]:
    return dict(os.environ, HEARTH_HOME=str(home), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")


def db_path(home: Path) -> Path:
    return home / "data" / "documents" / "documents.sqlite"


def indexed_count(home: Path) -> int:
    path = db_path(home)
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.2) as db:
            row = db.execute("SELECT COUNT(*) FROM documents WHERE status = 'indexed'").fetchone()
            return int(row[0])
    except sqlite3.Error:
        return 0


def run_and_kill(home: Path, docs: Path, moment: str, target: int) -> str:
    """Start `docs add`; SIGKILL it at its moment. Returns "killed" or "finished"."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "docs", "add", "soak", str(docs)],
        cwd=ROOT,
        env=env_for(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    vectors_seen = threading.Event()

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "updating the vector index" in line:
                vectors_seen.set()

    threading.Thread(target=read_stderr, daemon=True).start()
    while proc.poll() is None:
        if moment == "vectors" and vectors_seen.is_set():
            time.sleep(random.uniform(0, 0.05))  # the write lasts a fraction of a second
            break
        if moment != "vectors" and indexed_count(home) >= target:
            break
        time.sleep(0.01)
    if proc.poll() is not None:
        return "finished"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return "killed"


def sync(home: Path, docs: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "app.cli", "docs", "add", "soak", str(docs)],
        cwd=ROOT,
        env=env_for(home),
        check=True,
        capture_output=True,
        timeout=1800,
    )


def state(home: Path) -> dict[str, object]:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    with sqlite3.connect(db_path(home)) as db:
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        duplicates = db.execute(
            "SELECT COUNT(*) FROM (SELECT document_id, seq FROM chunks "
            "GROUP BY document_id, seq HAVING COUNT(*) > 1)"
        ).fetchone()[0]
        orphans = db.execute(
            "SELECT COUNT(*) FROM chunks WHERE document_id NOT IN (SELECT id FROM documents)"
        ).fetchone()[0]
        statuses = dict(db.execute("SELECT status, COUNT(*) FROM documents GROUP BY status"))
        chunk_ids = {r[0] for r in db.execute("SELECT id FROM chunks")}
        col_id = db.execute("SELECT id FROM collections WHERE name = 'soak'").fetchone()[0]
    client = chromadb.PersistentClient(
        path=str(db_path(home).parent / "vectors"),
        settings=ChromaSettings(anonymized_telemetry=False, allow_reset=True),
    )
    col = client.get_collection(f"hearth-{col_id}", embedding_function=None)
    vector_ids = {int(i) for i in col.get(include=[])["ids"]}
    return {
        "integrity": integrity,
        "duplicates": duplicates,
        "orphans": orphans,
        "statuses": statuses,
        "chunks": len(chunk_ids),
        "vectors_agree": vector_ids == chunk_ids,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--files", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    random.seed(args.seed)
    work = Path(tempfile.mkdtemp(prefix="hearth-soak-"))
    try:
        docs = work / "docs"
        make_corpus(docs, args.files)
        t0 = time.monotonic()
        sync(work / "clean", docs)
        clean = state(work / "clean")
        clean_s = time.monotonic() - t0
        print(f"clean run: {clean['statuses']}, {clean['chunks']} passages in {clean_s:.0f} s")
        kills: dict[str, int] = dict.fromkeys(MOMENTS, 0)
        rounds = []
        n = 0
        while sum(kills.values()) < args.kills:
            n += 1
            home = work / f"round-{n}"
            done = 0
            for moment in ROUND:
                now = indexed_count(home)
                if moment == "mid-batch" and now + 1 > args.files - 2:
                    continue
                target = {
                    "first-commit": 1,
                    "mid-batch": random.randint(now + 1, max(now + 1, args.files - 2)),
                }.get(moment, 0)  # "vectors" waits for the message, not a count
                outcome = run_and_kill(home, docs, moment, target)
                if outcome == "finished":
                    break
                kills[moment] += 1
                done += 1
                if sum(kills.values()) >= args.kills:
                    break
            sync(home, docs)
            got = state(home)
            ok = (
                got["integrity"] == "ok"
                and got["duplicates"] == 0
                and got["orphans"] == 0
                and got["vectors_agree"]
                and got["statuses"] == clean["statuses"]
                and got["chunks"] == clean["chunks"]
            )
            rounds.append({"round": n, "kills": done, "ok": ok, **got})
            print(
                f"round {n:2}: {done} kills, integrity {got['integrity']}, "
                f"duplicates {got['duplicates']}, orphans {got['orphans']}, "
                f"vectors agree {got['vectors_agree']}, {got['chunks']} passages "
                f"{'== clean' if ok else '!= clean: ' + str(got['statuses'])}"
            )
            shutil.rmtree(home, ignore_errors=True)
        failures = [r for r in rounds if not r["ok"]]
        print("\n| moment | kills |\n|---|---|")
        for moment, count in kills.items():
            print(f"| {moment} | {count} |")
        print(
            f"\n{sum(kills.values())} kills in {len(rounds)} rounds: "
            f"{len(rounds) - len(failures)} rounds equal to the clean run, {len(failures)} not"
        )
        if args.json:
            args.json.write_text(
                json.dumps(
                    {"clean": clean, "kills": kills, "rounds": rounds, "files": args.files},
                    indent=2,
                    default=str,
                )
            )
        return 1 if failures else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
