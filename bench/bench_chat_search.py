"""How fast the chat sidebar's search is, in the store and in the window, for 1,000 chats.

The history: 1,000 chats of 20 messages, 150-450 words each (about 33 MB of text), words drawn
Zipf-like from the project's own docs, so common words are common and rare ones rare; a few
chats mention a lighthouse and a Fresnel lens. Once in clear, once encrypted (SQLCipher).

1. Engine: each query's time in `ChatStore.titles(query)` (what the window calls), median and
   p95, against `chats(query)` as this version found it (a LIKE over every message, on the
   store's one connection), run on the same file in the same run; and the new query right after
   the store committed a change (which can cost a reading connection its page cache). The
   empty box's listing too: `titles()` against the old `chats()`.
2. Window: the real chat page over that store. Each query is typed a key every 80 ms, then
   the result awaited; measured on the GUI thread: each keystroke (QLineEdit's own handling
   and textChanged), starting the search, showing its result, listing all when the box is
   cleared; and the event loop's gaps (a 10 ms timer) against the 16 ms frame, with the same
   loop idle as a control. Baseline in the same run: the code this version replaced, which
   searched and refilled a QListWidget on the GUI thread at every keystroke.

Prints tables and writes JSON to bench/results/chat_search.json.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_chat_search.py
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

CHATS, MESSAGES, WORDS = 1000, 20, (150, 450)
RUNS = 15
KEY = "5e" * 32  # a fixed SQLCipher key: this bench needs no keyring
QUERIES = [
    "lighthouse",
    "fresnel lens",
    "the",
    "model",
    "zq",
    "encrypted history",
    "no such phrase anywhere",
]
TYPED = ["lighthouse", "fresnel lens", "model", "zq", "the"]
KEY_INTERVAL_MS = 80
FRAME_MS = 16.0


def vocabulary() -> list[str]:
    text = " ".join(
        p.read_text(errors="replace")
        for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    )
    words = re.findall(r"[A-Za-z][A-Za-z'-]{1,}", text)
    counts: dict[str, int] = {}
    for w in words:
        counts[w.lower()] = counts.get(w.lower(), 0) + 1
    return sorted(counts, key=lambda w: -counts[w])


def build(path: Path) -> None:
    """The history, written in one transaction (20,000 commits would take minutes)."""
    from engine.chats import ChatStore

    ChatStore(path).close()  # the schema, as the app makes it
    rng = random.Random(17)
    vocab = vocabulary()
    weights = [1 / (rank + 1) for rank in range(len(vocab))]
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    now = time.time()
    for c in range(CHATS):
        title = " ".join(rng.choices(vocab, weights, k=6)).capitalize()
        chat_id = db.execute(
            "INSERT INTO chats (title, created, updated) VALUES (?, ?, ?)",
            (title, now - c * 3600, now - c * 3600),
        ).lastrowid
        for m in range(MESSAGES):
            text = " ".join(rng.choices(vocab, weights, k=rng.randint(*WORDS)))
            if c % 97 == 5 and m == 7:
                text += " The lighthouse keeper polished the Fresnel lens."
            db.execute(
                "INSERT INTO messages (chat_id, seq, role, content, status, created) "
                "VALUES (?, ?, ?, ?, 'done', ?)",
                (chat_id, m + 1, "user" if m % 2 == 0 else "assistant", text, now),
            )
    db.execute("COMMIT")
    db.close()


def old_chats(store: Any, search: str) -> list[Any]:
    """`ChatStore.chats(search)` as this version found it: one LIKE over every message, on
    the store's one connection, under its lock."""
    from engine.chats import _chat, _escape_like

    pattern = "%" + _escape_like(search.strip()) + "%"
    with store._lock:
        if not search.strip():
            return [
                _chat(r)
                for r in store._db.execute("SELECT * FROM chats ORDER BY updated DESC, id DESC")
            ]
        rows = store._db.execute(
            "SELECT * FROM chats WHERE title LIKE ?1 ESCAPE '\\' OR id IN "
            "(SELECT chat_id FROM messages WHERE content LIKE ?1 ESCAPE '\\') "
            "ORDER BY updated DESC, id DESC",
            (pattern,),
        ).fetchall()
    return [_chat(r) for r in rows]


def timed(call: Callable[[], Any], before: Callable[[], Any] | None = None) -> list[float]:
    times = []
    for _ in range(RUNS):
        if before is not None:
            before()
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "n": len(values),
        "median": statistics.median(ordered),
        "p95": ordered[min(len(ordered) - 1, round(len(ordered) * 0.95) - 1)],
        "max": ordered[-1],
    }


def engine(store: Any) -> dict[str, Any]:
    def commit_elsewhere() -> None:
        """The store's writing connection commits (as a growing answer does every second)."""
        store.configure(1, model=None)

    out: dict[str, Any] = {}
    store.titles("warm-up")
    old_chats(store, "warm-up")
    for q in [*QUERIES, ""]:
        found = store.titles(q)
        assert found == [(c.id, c.title) for c in old_chats(store, q)], q  # the same answer
        out[q or "(empty box: the listing)"] = {
            "matches": len(found),
            "before_ms": stats(timed(lambda q=q: old_chats(store, q))),
            "after_ms": stats(timed(lambda q=q: store.titles(q))),
            "after_a_commit_ms": stats(timed(lambda q=q: store.titles(q), commit_elsewhere)),
        }
    return out


def old_refresh(list_widget: Any, chats: list[Any], current: int | None) -> None:
    """The QListWidget refill this version replaced, verbatim but for names."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QListWidgetItem

    list_widget.blockSignals(True)
    list_widget.clear()
    for chat in chats:
        item = QListWidgetItem(chat.title)
        item.setData(Qt.ItemDataRole.UserRole, chat.id)
        item.setToolTip(chat.title)
        list_widget.addItem(item)
        if chat.id == current:
            list_widget.setCurrentItem(item)
    list_widget.blockSignals(False)


def window(store: Any, home: Path) -> dict[str, Any]:
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication, QListWidget

    from tests.event_loop import GapRecorder

    os.environ["HEARTH_HOME"] = str(home)
    from app import compose
    from ui.chat_page import SEARCH_DELAY_MS, ChatPage

    app = QApplication.instance() or QApplication([])
    services = compose.build()
    services._chats = store  # the bench's history, in clear or encrypted
    page = ChatPage(services, lambda message: print("error:", message))
    page.resize(1100, 720)
    page.show()
    page.chat_id = store.chats()[3].id  # an open chat, marked in the list
    page.refresh_list()

    spent: dict[str, list[float]] = {
        "keystroke": [],
        "start a search": [],
        "show its result, paint the list": [],
        "empty box: list, show, paint": [],
    }

    def timing(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any) -> Any:
            searching = bool(page.search.text().strip())
            t0 = time.perf_counter()
            try:
                return method(*args)
            finally:
                if name != "start a search" or not searching:  # the list changed:
                    # its paint, due at the next turn of the event loop, done here so that it
                    # is counted with the change that caused it
                    page.chat_list.viewport().repaint()
                if searching:
                    spent[name].append((time.perf_counter() - t0) * 1000)
                elif name == "start a search":  # the box was cleared: listed at once
                    spent["empty box: list, show, paint"].append((time.perf_counter() - t0) * 1000)

        return wrapper

    page._search_timer.timeout.disconnect()
    page._search_timer.timeout.connect(timing("start a search", page.refresh_list))
    page._show_chats = timing(  # type: ignore[method-assign]
        "show its result, paint the list", page._show_chats
    )

    def pump(ms: float) -> None:
        end = time.perf_counter() + ms / 1000
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.001)

    # Python's full (generation 2) garbage collections stop every thread while they run; they
    # are counted to tell their pauses from the search's.
    collections: list[float] = []
    started = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if info["generation"] == 2:
            if phase == "start":
                started[0] = time.perf_counter()
            else:
                collections.append((time.perf_counter() - started[0]) * 1000)

    import gc

    gc.callbacks.append(on_gc)
    latency: list[float] = []
    expected_titles = {q: [title for _id, title in store.titles(q)] for q in TYPED}
    with GapRecorder() as recorder:
        for _round in range(3):
            for q in TYPED:
                page.search.clear()
                pump(300)
                for ch in q:
                    t0 = time.perf_counter()
                    QTest.keyClicks(page.search, ch)
                    spent["keystroke"].append((time.perf_counter() - t0) * 1000)
                    last_key = time.perf_counter()
                    pump(KEY_INTERVAL_MS)
                expected = expected_titles[q]
                deadline = time.perf_counter() + 10
                while (
                    page._search_timer.isActive()
                    or page._search_task is not None
                    or page.chat_model.titles() != expected
                ):
                    assert time.perf_counter() < deadline, f"no result for {q!r}"
                    app.processEvents()
                    time.sleep(0.0005)
                latency.append((time.perf_counter() - last_key) * 1000)
    gaps = recorder.gaps
    gc.callbacks.remove(on_gc)
    with GapRecorder() as idle:  # control: the same loop, nobody typing
        pump(sum(gaps))

    # Baseline: what each keystroke cost on the GUI thread before (search, then refill).
    old_list = QListWidget()
    old_list.resize(240, 600)
    old_list.show()
    before_keystroke: list[float] = []
    before_refill: list[float] = []
    for q in TYPED:
        for n in range(1, len(q) + 1):
            t0 = time.perf_counter()
            old_refresh(old_list, old_chats(store, q[:n]), page.chat_id)
            before_keystroke.append((time.perf_counter() - t0) * 1000)
    all_chats = old_chats(store, "")
    for _ in range(RUNS):  # the refill alone, 1,000 rows: a cleared box, or "the"
        t0 = time.perf_counter()
        old_refresh(old_list, all_chats, page.chat_id)
        before_refill.append((time.perf_counter() - t0) * 1000)
    old_list.close()

    page.shutdown()
    page.close()
    from PySide6.QtCore import QThreadPool

    QThreadPool.globalInstance().waitForDone(10_000)
    services._chats = None  # the bench closes its own store
    services.close()
    return {
        "gui_thread_ms": {k: stats(v) for k, v in spent.items()},
        "keystrokes": len(spent["keystroke"]),
        "typing_to_list_ms": stats(latency),
        "event_loop_gap_ms": stats(gaps),
        "gaps_over_frame": sum(g > 10 + FRAME_MS for g in gaps),
        "idle_event_loop_gap_ms": stats(idle.gaps),
        "idle_gaps_over_frame": sum(g > 10 + FRAME_MS for g in idle.gaps),
        "full_gc_while_typing_ms": collections,
        "before_keystroke_ms": stats(before_keystroke),
        "before_refill_ms": stats(before_refill),
        "search_delay_ms": SEARCH_DELAY_MS,
    }


def main() -> None:
    from engine import vault
    from engine.chats import ChatStore

    result: dict[str, Any] = {
        "chats": CHATS,
        "messages_per_chat": MESSAGES,
        "words_per_message": WORDS,
        "runs": RUNS,
        "sqlite": sqlite3.sqlite_version,
        "python": sys.version.split()[0],
    }
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "plain" / "chats.sqlite"
        plain.parent.mkdir()
        t0 = time.perf_counter()
        build(plain)
        result["build_s"] = time.perf_counter() - t0
        result["file_mb"] = plain.stat().st_size / 1e6
        with sqlite3.connect(plain) as db:
            result["text_mb"] = (
                db.execute("SELECT sum(length(content)) FROM messages").fetchone()[0] / 1e6
            )
        db.close()
        encrypted = Path(tmp) / "encrypted" / "chats.sqlite"
        encrypted.parent.mkdir()
        shutil.copyfile(plain, encrypted)
        vault.convert(encrypted, KEY, encrypt=True)
        for name, path, key in (("clear", plain, None), ("encrypted", encrypted, KEY)):
            store = ChatStore(path, key=key)
            result[name] = {
                "engine": engine(store),
                "window": window(store, Path(tmp) / f"home-{name}"),
            }
            store.close()
    report(result)
    out = ROOT / "bench" / "results" / "chat_search.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwritten to {out.relative_to(ROOT)}")


def report(result: dict[str, Any]) -> None:
    print(
        f"{result['chats']} chats x {result['messages_per_chat']} messages of "
        f"{result['words_per_message'][0]}-{result['words_per_message'][1]} words: "
        f"{result['text_mb']:.1f} MB of text, {result['file_mb']:.1f} MB file; SQLite "
        f"{result['sqlite']}, Python {result['python']}"
    )
    for name in ("clear", "encrypted"):
        print(
            f"\nEngine, {name} store: before chats(query), after titles(query); ms over "
            f"{result['runs']} runs"
        )
        print(
            f"  {'query':26} {'chats':>5} {'before p50':>10} {'p95':>6} {'after p50':>9} "
            f"{'p95':>6} {'after a commit p50':>18} {'p95':>6}"
        )
        for q, r in result[name]["engine"].items():
            b, a, c = r["before_ms"], r["after_ms"], r["after_a_commit_ms"]
            cols = (
                f"{b['median']:10.1f} {b['p95']:6.1f}" if b else f"{'-':>10} {'-':>6}",
                f"{a['median']:9.1f} {a['p95']:6.1f}",
                f"{c['median']:18.1f} {c['p95']:6.1f}" if c else f"{'-':>18} {'-':>6}",
            )
            print(f"  {q!r:26} {r['matches']:5d} {cols[0]} {cols[1]} {cols[2]}")
        w = result[name]["window"]
        print(
            f"\nWindow, {name} store: GUI-thread time, ms ({w['keystrokes']} keystrokes, "
            f"{len(TYPED)} queries typed 3 times, a key every {KEY_INTERVAL_MS} ms)"
        )
        print(f"  {'on the GUI thread':42} {'n':>4} {'p50':>6} {'p95':>6} {'max':>6}")
        rows = [
            *w["gui_thread_ms"].items(),
            ("before, each key: search + list refill", w["before_keystroke_ms"]),
            ("before: QListWidget refill, 1,000 rows", w["before_refill_ms"]),
        ]
        for label, s in rows:
            print(f"  {label:42} {s['n']:4d} {s['median']:6.2f} {s['p95']:6.2f} {s['max']:6.2f}")
        g, lat, idle = w["event_loop_gap_ms"], w["typing_to_list_ms"], w["idle_event_loop_gap_ms"]
        print(
            f"  event loop while typing (10 ms timer): gap p50 {g['median']:.1f}, "
            f"max {g['max']:.1f}; gaps over 10+{FRAME_MS:.0f} ms: {w['gaps_over_frame']} of "
            f"{g['n']}"
        )
        print(
            f"  event loop idle, same time (control):   gap p50 {idle['median']:.1f}, "
            f"max {idle['max']:.1f}; gaps over 10+{FRAME_MS:.0f} ms: "
            f"{w['idle_gaps_over_frame']} of {idle['n']}"
        )
        full = w["full_gc_while_typing_ms"]
        print(
            f"  full garbage collections while typing: {len(full)}"
            + (f", longest {max(full):.1f} ms" if full else "")
        )
        print(
            f"  last key to list updated: p50 {lat['median']:.0f} ms, max {lat['max']:.0f} "
            f"ms (includes the {w['search_delay_ms']} ms pause the search waits for)"
        )


if __name__ == "__main__":
    main()
