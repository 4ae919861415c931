"""The set-up's self-test of llama.cpp (engine/runtime/selftest.py), run as the set-up runs it:
`python -m engine.runtime.selftest` in a child process, on the real build and bundled model.

It must pass on a sound build, and fail with a sentence on a build that crashes: a crash in
the fast kernels only (the runtime's own recovery must not hide it), a crash everywhere, and
an illegal instruction for real, with the workers run on an emulated older CPU (QEMU user
mode, `HEARTH_WORKER_PREFIX`), where this machine's native build cannot run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.runtime import selftest

FAULTS = Path(__file__).resolve().parents[1] / "native_faults"


def run_selftest(tmp_path: Path, **env: str) -> tuple[int, dict[str, Any], str]:
    record = tmp_path / "selftest.json"
    done = subprocess.run(
        [sys.executable, "-m", "engine.runtime.selftest", "--record", str(record)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=900,
    )
    return done.returncode, json.loads(record.read_text()), done.stderr


def checks(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in result["checks"]}


def test_the_installed_build_passes_and_its_record_names_this_build(tmp_path: Path) -> None:
    rc, result, said = run_selftest(tmp_path)
    assert rc == 0, said
    assert result["passed"] and "self-test passed" in said
    by_name = checks(result)
    assert "Paris" in by_name["answer"]["facts"]["answer"]
    kernels = by_name["kernels"]["facts"]
    assert kernels["relative_gap"] <= selftest.PERPLEXITY_TOLERANCE
    # A perplexity no broken kernel gives: the bundled model reads plain English prose.
    assert 1.0 < kernels["plain"]["perplexity"] < 100.0
    assert kernels["fast"]["tokens"] == kernels["plain"]["tokens"] > 150
    assert result["library"]["sha256"] == selftest.library_identity()["sha256"]
    assert result["cpu"]["features"]
    if {"amx_tile", "amx_int8"} <= set(result["cpu"]["features"]):
        # On a Xeon with AMX the suite proves the fix itself: the set-up built the patched
        # kernel (not the no-AMX fallback), and the fast run really went through AMX.
        from engine import llama_build

        assert (llama_build.build_record() or {}).get("amx") == "patched"
        assert "AMX" in kernels["fast"]["buffers"]


def test_a_crash_in_the_fast_kernels_fails_even_though_the_runtime_would_recover(
    tmp_path: Path,
) -> None:
    rc, result, said = run_selftest(
        tmp_path, PYTHONPATH=str(FAULTS), HEARTH_TEST_LLAMA_FAULT="SIGSEGV"
    )
    assert rc == 1 and not result["passed"] and "FAILED" in said
    by_name = checks(result)
    assert "crashed in llama.cpp's fast CPU kernels" in by_name["answer"]["said"]
    assert "fast CPU kernels failed (SIGSEGV: a crash in native code)" in by_name["kernels"]["said"]
    assert by_name["kernels"]["facts"]["plain"]["perplexity"] > 1.0  # the plain ones scored


def test_a_build_that_crashes_everywhere_fails_with_the_signal_named(tmp_path: Path) -> None:
    rc, result, _said = run_selftest(
        tmp_path, PYTHONPATH=str(FAULTS), HEARTH_TEST_LLAMA_FAULT="always:SIGILL"
    )
    assert rc == 1 and not result["passed"]
    by_name = checks(result)
    assert "crashed twice" in by_name["answer"]["said"]
    assert (
        "plain CPU kernels failed (SIGILL: an instruction this processor does not have)"
        in (by_name["kernels"]["said"])
    )


def native_build_uses_avx() -> bool:
    import llama_cpp

    from engine import llama_build

    info = llama_build.parse_system_info(llama_cpp.llama_print_system_info().decode())
    return bool(info.get("CPU", {}).get("AVX"))


@pytest.mark.skipif(shutil.which("qemu-x86_64") is None, reason="needs qemu-user (scripts/test)")
def test_on_an_emulated_older_cpu_the_native_build_fails_with_an_illegal_instruction(
    tmp_path: Path,
) -> None:
    """Nehalem has SSE4.2 and no AVX; a build compiled for this machine (AVX at least, on
    every machine the project has run on) cannot run there. The self-test runs its workers
    under QEMU as the CPU, and must say so rather than pass or hang."""
    if not native_build_uses_avx():
        pytest.fail("this llama.cpp build has no AVX kernels: the emulated CPU proves nothing")
    rc, result, said = run_selftest(tmp_path, HEARTH_WORKER_PREFIX="qemu-x86_64 -cpu Nehalem")
    assert rc == 1 and not result["passed"]
    assert "SIGILL" in checks(result)["kernels"]["said"], said
