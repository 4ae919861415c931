"""How responsive the desktop app is.

1. Launch to interactive: `python -m app` with HEARTH_STARTUP_PROBE, which prints the time of
   the first event-loop turn after the window is shown, then quits. Measured from just before
   the process is spawned; median of several fresh launches (a new data folder each time, so
   every launch is a first run). Baseline in the same run: `python -c "import PySide6.QtWidgets"`
   with a QApplication, the floor any PySide6 app pays.
2. Idle memory: the resident memory of the window process and its model worker 20 s after a
   first-run start (the bundled model loaded, nothing asked), beside a bare PySide6 window's.
3. Event-loop latency: the real main window, a 10 ms timer; the gaps between its ticks while
   the bundled model loads at start, while it writes a long answer, and while a folder is
   indexed. Indexing is measured
   twice in the same run: as the app does it (documents work in child processes) and in-process
   (the baseline this design replaced).

Prints a table and writes JSON to bench/results/gui.json.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_gui.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
LAUNCHES = 7


def launch_to_interactive() -> list[float]:
    times = []
    for _ in range(LAUNCHES):
        with tempfile.TemporaryDirectory() as home:
            env = dict(os.environ, HEARTH_HOME=home, HEARTH_STARTUP_PROBE="1")
            t0 = time.time()
            out = subprocess.run(
                [sys.executable, "-m", "app"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            ).stdout
            stamp = float(out.split("interactive ", 1)[1].split()[0])
            times.append(stamp - t0)
    return times


def bare_qt() -> list[float]:
    code = (
        "import time,sys; from PySide6.QtWidgets import QApplication, QWidget; "
        "a=QApplication([]); w=QWidget(); w.show(); a.processEvents(); "
        "print(time.time())"
    )
    times = []
    for _ in range(LAUNCHES):
        t0 = time.time()
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
        ).stdout
        times.append(float(out.strip()) - t0)
    return times


def idle_rss(settle_s: float = 20.0) -> dict[str, float]:
    """Resident memory (MB) of the window process and of its model worker, idle after the
    bundled model has loaded on a first run; beside it, a bare PySide6 window's."""
    import psutil

    bare_code = (
        "import time; from PySide6.QtWidgets import QApplication, QWidget; "
        "a=QApplication([]); w=QWidget(); w.show(); a.processEvents(); time.sleep(60)"
    )
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, HEARTH_HOME=home)
        app = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=env)
        bare = subprocess.Popen([sys.executable, "-c", bare_code])
        try:
            time.sleep(settle_s)  # the model loads in about a second; then nothing happens
            window = psutil.Process(app.pid)
            children = window.children(recursive=True)
            worker = [c for c in children if "engine.runtime.worker" in " ".join(c.cmdline())]
            out["window"] = window.memory_info().rss / 1e6
            out["model worker"] = sum(c.memory_info().rss for c in worker) / 1e6
            out["other children"] = (
                sum(c.memory_info().rss for c in children if c not in worker) / 1e6
            )
            out["bare PySide6 window"] = psutil.Process(bare.pid).memory_info().rss / 1e6
        finally:
            for proc in (app, bare):
                proc.terminate()
                proc.wait(30)
    return out


def gaps_while(app, until, timeout_s: float) -> list[float]:
    from tests.event_loop import GapRecorder

    deadline = time.monotonic() + timeout_s
    with GapRecorder() as recorder:
        while not until() and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.001)
    return recorder.gaps


def make_folder(folder: Path) -> Path:
    from tests.app.test_cli_docs import make_docs

    make_docs(folder)
    for i in range(60):
        (folder / f"note-{i:02}.txt").write_text(f"Note {i}. " + "Lighthouses guide ships. " * 300)
    return folder


def event_loop(tmp: Path) -> dict[str, list[float]]:
    from PySide6.QtWidgets import QApplication

    os.environ["HEARTH_HOME"] = str(tmp / "home")
    from app import compose
    from ui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    out: dict[str, list[float]] = {}
    for isolated in (True, False):
        os.environ["HEARTH_HOME"] = str(tmp / f"home-{isolated}")
        services = compose.build(isolate_documents=isolated)
        win = MainWindow(services)
        win.show()
        win.start()
        starting = gaps_while(
            app,
            lambda: (
                win.chat.model_state.endswith("ready")  # noqa: B023
                and not win.chat.busy()  # noqa: B023
            ),
            60,
        )
        if isolated:
            out["start: loading the bundled model"] = starting
            services.chats.configure(
                win.chat.chat_id, sampling={"temperature": 0.8, "seed": 1, "max_tokens": 600}
            )
            win.chat.composer.setPlainText("Write a very long story about a dragon.")
            win.chat.send()
            out["generating"] = gaps_while(app, lambda: not win.chat.busy(), 120)  # noqa: B023
        done: list[str] = []
        win.documents.indexed.connect(done.append)
        win.documents.create_collection("bench", [str(make_folder(tmp / f"docs-{isolated}"))])
        key = (
            "indexing (child process, as shipped)"
            if isolated
            else "indexing (in-process, baseline)"
        )
        out[key] = gaps_while(app, lambda: bool(done), 600)  # noqa: B023
        win.close()
        from PySide6.QtCore import QThreadPool

        QThreadPool.globalInstance().waitForDone(30_000)
        services.close()
    return out


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "n": len(values),
        "p50": statistics.median(ordered),
        "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "max": ordered[-1],
        "over_50ms": sum(v > 50 for v in values),
    }


def main() -> None:
    launch = launch_to_interactive()
    floor = bare_qt()
    memory = idle_rss()
    with tempfile.TemporaryDirectory() as tmp:
        loops = event_loop(Path(tmp))
    result = {
        "launch_to_interactive_s": {
            "hearth": launch,
            "bare_pyside6": floor,
            "hearth_median": statistics.median(launch),
            "bare_median": statistics.median(floor),
        },
        "event_loop_gap_ms": {k: summary(v) for k, v in loops.items()},
        "idle_rss_mb": memory,
        "python": sys.version.split()[0],
    }
    print(f"Launch to interactive (median of {LAUNCHES}, first run each):")
    print(f"  Hearth            {result['launch_to_interactive_s']['hearth_median']:.3f} s")
    print(f"  bare PySide6 app  {result['launch_to_interactive_s']['bare_median']:.3f} s")
    print("\nResident memory, idle after the bundled model loaded (MB):")
    for name, mb in memory.items():
        print(f"  {name:20} {mb:8.1f}")
    print("\nEvent-loop gaps with a 10 ms timer (ms):")
    print(f"  {'while':40} {'ticks':>6} {'p50':>6} {'p99':>7} {'max':>7} {'>50ms':>6}")
    for name, s in result["event_loop_gap_ms"].items():
        print(
            f"  {name:40} {s['n']:6d} {s['p50']:6.1f} {s['p99']:7.1f} {s['max']:7.1f} "
            f"{s['over_50ms']:6d}"
        )
    out = ROOT / "bench" / "results" / "gui.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\nJSON: {out}")


if __name__ == "__main__":
    main()
