"""Can this llama.cpp build answer on this CPU? The set-up's last step and the release's proof.

Three checks, each in a child process, so that a crash in native code is reported, not suffered:

1. answer: the bundled chat model, loaded through Hearth's own model worker, answers "What is
   the capital of France?" greedily, and the answer names Paris. If the worker crashes, the
   runtime's own recovery (plain kernels, `engine.runtime.client`) is not allowed to hide it:
   a build whose fast kernels crash fails here even though Hearth would go on answering.
2. and 3. kernels: the perplexity of a fixed text on llama.cpp's fast CPU kernels and on its
   plain ones (`engine.runtime.kernel_check`), which must agree within `PERPLEXITY_TOLERANCE`.

    python -m engine.runtime.selftest [--record PATH] [--json]

Exit status: 0 passed; 1 failed (the sentence on stderr says how); `--record` keeps the result
as JSON (`hearth doctor` reads the one beside the installed llama_cpp, `llama_build.read_selftest`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine import workers
from engine.errors import HearthError
from engine.llama_build import library_identity, selftest_record_path
from engine.runtime.client import describe_exit

QUESTION = "What is the capital of France?"
EXPECTED = "Paris"
# The fast and plain kernels quantize activations the same way and differ only in the order
# of their sums: 18.4051 against 18.4102 (0.03 %) for AMX on a Sapphire Rapids Xeon, issue 33.
# A broken kernel is off by orders of magnitude. 1 % leaves room for every CPU's rounding.
PERPLEXITY_TOLERANCE = 0.01
# Per check. An emulated CPU (QEMU, the release's proof on older CPUs) is about 100x slower.
CHECK_TIMEOUT_S = float(os.environ.get("HEARTH_SELFTEST_TIMEOUT_S") or 300.0)


@dataclass
class Check:
    name: str
    passed: bool
    said: str  # one sentence: what it did and what came of it
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class SelfTest:
    passed: bool
    checks: list[Check]
    library: dict[str, Any]
    cpu: dict[str, Any]
    seconds: float
    when: str

    @property
    def summary(self) -> str:
        failed = [c for c in self.checks if not c.passed]
        if not failed:
            return "passed: " + "; ".join(c.said for c in self.checks)
        return "FAILED: " + "; ".join(c.said for c in failed)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"summary": self.summary}


def _system_prompt() -> str | None:
    """The one the app uses with the bundled model (the catalog's): with a generic one, its
    greedy answer starts in French on some CPUs (tests/runtimes.py)."""
    from engine import models

    for entry in models.load_catalog().models:
        if entry.bundled_as == models.BUNDLED_CHAT.id:
            return str(entry.defaults.get("system_prompt") or "") or None
    return None


def check_answer(model_path: str) -> Check:
    """The bundled model answers the capital question through Hearth's worker, greedily."""
    from engine.runtime.client import ModelRuntime
    from engine.runtime.events import TextPiece
    from engine.runtime.params import ChatMessage, ChatRequest, LoadParams, SamplingParams

    request = ChatRequest(
        messages=(ChatMessage("user", QUESTION),),
        sampling=SamplingParams(temperature=0.0, max_tokens=24, seed=0),
        system_prompt=_system_prompt(),
    )
    started = time.perf_counter()
    text: list[str] = []
    with ModelRuntime(admit=lambda _path: None, load_timeout_s=CHECK_TIMEOUT_S) as runtime:
        try:
            loaded = runtime.load(LoadParams(model_path=model_path, context_length=512))
            for event in runtime.stream_chat(request):
                if isinstance(event, TextPiece):
                    text.append(event.text)
        except HearthError as exc:
            return Check("answer", False, f"the model could not answer: {exc.user_message}")
        answer = "".join(text).strip()
        facts: dict[str, Any] = {
            "answer": answer,
            "seconds": round(time.perf_counter() - started, 3),
            "buffers": sorted(loaded.runtime.get("offload", {}).get("devices", {})),
            # As the worker saw it: under an emulated CPU, the only view that counts.
            "cpu_variant": loaded.runtime.get("cpu_variant"),
        }
        if runtime.plain_cpu_kernels:  # the runtime recovered: the fast kernels crashed
            return Check(
                "answer",
                False,
                "the model worker crashed in llama.cpp's fast CPU kernels on its first answer "
                f"(on the plain ones it answered {facts['answer']!r})",
                facts,
            )
    if EXPECTED.lower() not in answer.lower():
        return Check("answer", False, f"the answer {answer!r} does not name {EXPECTED}", facts)
    return Check("answer", True, f"answered {answer!r}", facts)


def _perplexity(model_path: str, kernels: str) -> dict[str, Any] | str:
    """kernel_check in a child: its JSON, or a sentence saying how it failed."""
    argv = workers.command("engine.runtime.kernel_check", kernels, model_path)
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            timeout=CHECK_TIMEOUT_S,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
    except subprocess.TimeoutExpired:
        return f"did not finish in {CHECK_TIMEOUT_S:.0f} s"
    if done.returncode < 0:
        return describe_exit(done.returncode)
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        return f"exit code {done.returncode} ({tail[0][:200]})"
    try:
        lines = done.stdout.decode().strip().splitlines()
        return dict(json.loads(lines[-1]))
    except (ValueError, IndexError):
        return "no result"


def check_kernels(model_path: str) -> Check:
    """Fast and plain kernels score the same text the same, within PERPLEXITY_TOLERANCE."""
    fast = _perplexity(model_path, "fast")
    plain = _perplexity(model_path, "plain")
    if isinstance(plain, str):
        return Check("kernels", False, f"llama.cpp's plain CPU kernels failed ({plain})")
    if isinstance(fast, str):
        return Check(
            "kernels",
            False,
            f"llama.cpp's fast CPU kernels failed ({fast}) where its plain ones scored "
            f"perplexity {plain['perplexity']:.4f}",
            {"plain": plain},
        )
    gap = abs(fast["perplexity"] - plain["perplexity"]) / plain["perplexity"]
    facts = {"fast": fast, "plain": plain, "relative_gap": gap}
    said = (
        f"perplexity {fast['perplexity']:.4f} on the fast kernels "
        f"({', '.join(fast['buffers']) or 'no buffers named'}) against "
        f"{plain['perplexity']:.4f} on the plain ones"
    )
    if gap > PERPLEXITY_TOLERANCE:
        return Check("kernels", False, f"{said}: {gap:.2%} apart", facts)
    return Check("kernels", True, said, facts)


def cpu_facts() -> dict[str, Any]:
    from engine import hardware

    model, physical, _logical, features = hardware.cpu()
    return {"model": model, "features": list(features), "physical": physical}


CHECKS = {"answer": check_answer, "kernels": check_kernels}


def run(model_path: str | None = None, only: str | None = None) -> SelfTest:
    """The checks on the bundled chat model (or `model_path`); `only` names one of CHECKS."""
    from engine import models

    started = time.perf_counter()
    path = model_path or str(models.BUNDLED_CHAT.path())
    checks = [check(path) for name, check in CHECKS.items() if only in (None, name)]
    return SelfTest(
        passed=all(c.passed for c in checks),
        checks=checks,
        library=library_identity(),
        cpu=cpu_facts(),
        seconds=round(time.perf_counter() - started, 3),
        when=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )


def main(argv: list[str] | None = None) -> int:
    from engine import network

    parser = argparse.ArgumentParser(prog="python -m engine.runtime.selftest")
    parser.add_argument(
        "--record",
        nargs="?",
        const="",
        help="keep the result (default: beside the installed llama_cpp)",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--model", help="a GGUF instead of the bundled chat model")
    parser.add_argument(
        "--only",
        choices=sorted(CHECKS),
        help="one check (the release runs "
        "only the answer on emulated CPUs, where the rest takes half an hour)",
    )
    args = parser.parse_args(argv)
    network.install("self-test")
    result = run(args.model, args.only)
    from engine import llama_build

    out = result.as_dict() | {
        "platform": platform.platform(),
        # How it was run, where a release proves a variant or an emulated CPU (smoke.sh).
        "run_as": os.environ.get("HEARTH_SELFTEST_AS") or "host",
        # The variant the model ran on, as its worker reported it; this process's view where
        # the answer check did not run. (A frozen app may run itself natively even when
        # started under QEMU: its workers, started with HEARTH_WORKER_PREFIX, are emulated.)
        "cpu_variant": next(
            (c.facts["cpu_variant"] for c in result.checks if c.facts.get("cpu_variant")),
            llama_build.cpu_variant(),
        ),
    }
    if args.record is not None:
        target = Path(args.record) if args.record else selftest_record_path()
        if target is not None:
            target.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    if args.json:
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
    print(f"llama.cpp self-test {result.summary} ({result.seconds:.1f} s)", file=sys.stderr)
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
