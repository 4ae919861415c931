"""What an idle window costs, and what unloading the model while unused gives back (issue 24).

    .venv/bin/python bench/bench_idle.py [--rounds 3]

Builds the window as the app does (offscreen Qt, the bundled model loaded in its worker),
then measures, per round:

  RSS window / worker, loaded and idle       psutil, after 3 s without use
  RSS window / worker, after the idle unload  the worker process is gone: 0
  TTFT loaded                                 a short question to the loaded model
  TTFT after unload                           the same question right after an unload: the
                                              reload is inside it

Unload after is set to 0.05 minutes (3 s) for the bench; the app's default is 30 minutes.
Prints a table and writes JSON. The machine is shared and noisy: read the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HEARTH_HOME"] = tempfile.mkdtemp(prefix="hearth-bench-idle-")

from engine import network  # noqa: E402

network.install("bench")

import psutil  # noqa: E402
from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app import compose  # noqa: E402
from engine.runtime import ChatMessage, ChatRequest, SamplingParams, TextPiece  # noqa: E402
from ui.main_window import MainWindow  # noqa: E402

MB = 1024 * 1024


def wait(ms: int) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def rss(pid: int | None) -> float:
    return psutil.Process(pid).memory_info().rss / MB if pid else 0.0


def ttft(services: compose.Services) -> float:
    """Time to the first piece of a short greedy answer, loading first if need be (as the
    window's next message does: the model it had loaded)."""
    runtime = services.runtime
    request = ChatRequest(
        (ChatMessage("user", "Say hello."),), SamplingParams(temperature=0.0, max_tokens=8)
    )
    t0 = time.perf_counter()
    first = None
    for event in runtime.stream_chat(request):
        if isinstance(event, TextPiece) and first is None:
            first = time.perf_counter() - t0
    assert first is not None
    return first * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "idle.json")
    args = parser.parse_args()
    app = QApplication([])
    services = compose.build(isolate_documents=True)
    window = MainWindow(services)
    window.show()
    window.start()
    runtime = services.runtime
    while runtime.loaded is None:
        wait(200)
    rows = []
    for _ in range(args.rounds):
        ttft(services)  # warm
        services.settings.set("inference.unload_after_minutes", 30.0)
        warm_ms = ttft(services)
        wait(3000)
        idle = (rss(os.getpid()), rss(runtime.worker_pid))
        services.settings.set("inference.unload_after_minutes", 0.05)
        while runtime.loaded is not None:
            wait(200)
        wait(1000)
        gone = (rss(os.getpid()), rss(runtime.worker_pid))
        rows.append(
            {
                "window_idle_mb": idle[0],
                "worker_idle_mb": idle[1],
                "window_unloaded_mb": gone[0],
                "worker_unloaded_mb": gone[1],
                "ttft_loaded_ms": warm_ms,
                "ttft_after_unload_ms": ttft(services),
            }
        )
    window.close()
    services.close()
    app.quit()
    median = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    print(f"bundled model, median of {args.rounds} rounds")
    print(f"{'':28} {'window MB':>10} {'worker MB':>10} {'total MB':>10}")
    for label, w, k in (
        ("loaded, idle", "window_idle_mb", "worker_idle_mb"),
        ("after the idle unload", "window_unloaded_mb", "worker_unloaded_mb"),
    ):
        total = median[w] + median[k]
        print(f"{label:28} {median[w]:10.0f} {median[k]:10.0f} {total:10.0f}")
    print(f"time to first token, loaded:        {median['ttft_loaded_ms']:8.0f} ms")
    print(f"time to first token, after unload:  {median['ttft_after_unload_ms']:8.0f} ms")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"rounds": rows, "median": median}, indent=1))
    print(f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
