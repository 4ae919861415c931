"""What the llama.cpp self-test adds to the set-up, against what one answer costs.

In turns, `--rounds` times (a slow spell of the shared machine lands on all of them):
- selftest: `python -m engine.runtime.selftest` (its three checks, each in a child process);
- ask: `hearth ask` of the same question on the bundled model, a fresh HEARTH_HOME (the
  baseline: a user's first answer);
- setup-again: `scripts/_install.sh` on an installed checkout (what every `scripts/run` pays
  before the app starts; the self-test is skipped there once it passed for this build).
With `--from-nothing`, also the whole `scripts/run --version` in a fresh clone with an empty
llama.cpp wheel cache and a new venv (about 10 minutes on 2 cores: pip downloads, the
llama.cpp build, the self-test), once.

    .venv/bin/python bench/bench_selftest.py [--rounds 3] [--from-nothing] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = str(ROOT / ".venv" / "bin" / "python")


def timed(argv: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT) -> float:
    started = time.perf_counter()
    subprocess.run(
        argv,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def one_round() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as home:
        env = {"HEARTH_HOME": home, "HF_HUB_OFFLINE": "1"}
        return {
            "selftest": timed([PY, "-m", "engine.runtime.selftest"], env),
            "ask": timed(
                [
                    str(ROOT / ".venv" / "bin" / "hearth"),
                    "ask",
                    "--temperature",
                    "0",
                    "What is the capital of France?",
                ],
                env,
            ),
            "setup-again": timed(["bash", "-c", 'source scripts/_install.sh ""']),
        }


def from_nothing() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "fresh"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        env = {
            "HEARTH_LLAMA_WHEELS": str(Path(tmp) / "wheels"),
            "HEARTH_HOME": str(Path(tmp) / "home"),
            "PIP_NO_CACHE_DIR": "1",
        }
        return timed(["./scripts/run", "--version"], env, cwd=clone)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--from-nothing", action="store_true")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "selftest.json")
    args = parser.parse_args()
    rounds = [one_round() for _ in range(args.rounds)]
    names = list(rounds[0])
    table = {
        name: {
            "median_s": statistics.median(r[name] for r in rounds),
            "range_s": [min(r[name] for r in rounds), max(r[name] for r in rounds)],
            "vs_ask": statistics.median(r[name] / r["ask"] for r in rounds),
        }
        for name in names
    }
    result: dict[str, object] = {"rounds": rounds, "table": table, "cpu": os.uname().machine}
    if args.from_nothing:
        result["scripts_run_from_nothing_s"] = from_nothing()
    print(f"{'step':14} {'median s':>9} {'range s':>15} {'x one answer':>13}")
    for name, row in table.items():
        low, high = row["range_s"]
        print(f"{name:14} {row['median_s']:9.1f} {low:7.1f}-{high:<7.1f} {row['vs_ask']:13.2f}")
    if args.from_nothing:
        print(f"scripts/run from nothing: {result['scripts_run_from_nothing_s']:.0f} s")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
