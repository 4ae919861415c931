"""The llama.cpp a release ships (portable CPU variants, chosen at run time) against the one
pip built for this machine (-march=native), on the bundled model, in one run.

    packaging/build_llama.sh                  # writes build/wheels/llama_cpp_python-*.whl
    .venv/bin/pip install --no-deps --target build/portable-llama \
        build/wheels/llama_cpp_python-*.whl
    .venv/bin/python bench/bench_llama_builds.py [--portable build/portable-llama] [--rounds 5]

Each round runs both builds, in alternating order, each in a fresh process (the portable one
with its wheel first on PYTHONPATH): prefill tok/s of a ~500-token prompt and greedy decode
tok/s over 128 tokens, through llama-cpp-python as bench_inference.py's direct runs do.
Prints a table of medians and the portable/native ratios, and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys
sys.path.insert(1, {bench!r})
from bench_inference import direct_round
from engine import llama_build
from engine.models import bundled
run = direct_round(bundled.CHAT.path(), {threads}, 0)
info = llama_build.build_info()
print("RESULT " + json.dumps({{"prefill": run["prefill"], "decode": run["decode"],
      "kernels": info["cpu_kernels"], "dispatch": info["cpu_dispatch"].split(" over ")[0]}}))
"""


def one_run(portable: Path | None, threads: int) -> dict[str, Any]:
    first = [str(portable)] if portable is not None else []
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join([*first, str(ROOT)])}
    code = CHILD.format(bench=str(ROOT / "bench"), threads=threads)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600, cwd=ROOT
    )
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line[len("RESULT ") :])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--portable", type=Path, default=ROOT / "build" / "portable-llama")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--json", type=Path, default=ROOT / "bench" / "results" / "llama_builds.json"
    )
    args = parser.parse_args()
    if not (args.portable / "llama_cpp").is_dir():
        raise SystemExit(f"{args.portable} has no llama_cpp: see this script's docstring")

    results: dict[str, list[dict[str, Any]]] = {"native": [], "portable": []}
    for r in range(args.rounds):
        order = ["native", "portable"] if r % 2 == 0 else ["portable", "native"]
        for name in order:
            results[name].append(
                one_run(args.portable if name == "portable" else None, args.threads)
            )
            print(
                f"round {r + 1}/{args.rounds} {name}: "
                f"prefill {results[name][-1]['prefill']:.0f} tok/s, "
                f"decode {results[name][-1]['decode']:.1f} tok/s",
                file=sys.stderr,
            )

    summary: dict[str, Any] = {"threads": args.threads, "rounds": args.rounds, "builds": {}}
    for name, runs in results.items():
        summary["builds"][name] = {
            "prefill_tok_s": statistics.median(x["prefill"] for x in runs),
            "decode_tok_s": statistics.median(x["decode"] for x in runs),
            "dispatch": runs[0]["dispatch"],
            "cpu_kernels": runs[0]["kernels"],
            "runs": runs,
        }
    b = summary["builds"]
    summary["ratio_portable_over_native"] = {
        k: b["portable"][k] / b["native"][k] for k in ("prefill_tok_s", "decode_tok_s")
    }

    print(f"\n{'build':<10}{'prefill tok/s':>15}{'decode tok/s':>14}  CPU kernels")
    for name in ("native", "portable"):
        print(
            f"{name:<10}{b[name]['prefill_tok_s']:>15.0f}{b[name]['decode_tok_s']:>14.1f}  "
            f"{' '.join(b[name]['cpu_kernels'])}"
        )
    ratio = summary["ratio_portable_over_native"]
    print(
        f"{'ratio':<10}{ratio['prefill_tok_s']:>15.2f}{ratio['decode_tok_s']:>14.2f}  "
        f"(portable / native, medians of {args.rounds} alternating rounds)"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nJSON: {args.json}")


if __name__ == "__main__":
    main()
