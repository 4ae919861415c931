"""What the offline guard's audit hook costs (engine/network.py).

The hook runs on every audit event in the process (each open(), import, subprocess, socket
call), so it must be cheap when the event is not a socket one. Measured in fresh interpreters,
alternating with and without the guard in the same run (this machine is shared and noisy):
- open("/dev/null").close(), 200,000 times: a non-socket event the hook looks at and ignores;
- a loopback TCP connect + accept, 2,000 times: a socket event the hook inspects and lets pass.

Prints a table and writes JSON to bench/results/network_guard.json.

    .venv/bin/python bench/bench_network_guard.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = 5
PROBE = r"""
import socket, sys, time
if sys.argv[1] == "guard":
    from engine import network
    network.install("bench")
t = time.perf_counter()
for _ in range(200_000):
    open("/dev/null").close()
opened = (time.perf_counter() - t) / 200_000
server = socket.create_server(("127.0.0.1", 0))
port = server.getsockname()[1]
t = time.perf_counter()
for _ in range(2_000):
    socket.create_connection(("127.0.0.1", port)).close()
    server.accept()[0].close()
connected = (time.perf_counter() - t) / 2_000
print(opened * 1e6, connected * 1e6)
"""


def main() -> None:
    samples: dict[str, list[tuple[float, float]]] = {"bare": [], "guard": []}
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, HEARTH_HOME=home)
        for _ in range(ROUNDS):
            for mode in samples:
                out = subprocess.run(
                    [sys.executable, "-c", PROBE, mode],
                    cwd=ROOT,
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                opened, connected = map(float, out.split())
                samples[mode].append((opened, connected))
    result = {}
    for i, what in enumerate(("open() (µs)", "loopback connect (µs)")):
        bare = statistics.median(s[i] for s in samples["bare"])
        guard = statistics.median(s[i] for s in samples["guard"])
        result[what] = {
            "without guard": round(bare, 3),
            "with guard": round(guard, 3),
            "ratio": round(guard / bare, 3),
        }
    print(f"{'operation':24} {'without':>10} {'with guard':>11} {'ratio':>7}")
    for what, r in result.items():
        print(f"{what:24} {r['without guard']:>10} {r['with guard']:>11} {r['ratio']:>7}")
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "network_guard.json").write_text(
        json.dumps({"rounds": ROUNDS, "median_of_rounds": result}, indent=2) + "\n"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
