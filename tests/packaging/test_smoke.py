# ruff: noqa: E501  (the stand-in app is a shell script, one case per line)
"""packaging/linux/smoke.sh reports a failing step with its output (it used to send `docs add`
to /dev/null, so a release failed its smoke test with no reason in the log). A stand-in app
folder, shell scripts answering like the app, makes each case fast; the real frozen app is
smoke-tested by scripts/test's release build."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

GOOD = r"""#!/bin/sh
case "$1" in
  --version) echo "hearth 0.1.0" ;;
  doctor) printf 'network guard: on\nanalytics or crash-reporting packages: none\nMachine policy:\n'
          if [ -n "$TORCH_EMBEDDER" ]; then echo "Document embedder: runs on torch in bfloat16 where the CPU computes it natively"
          else echo "Document embedder: runs on onnxruntime, float32, on the ONNX export shipped with this build (no torch)"; fi
          echo "    sha256 of onnx/model.onnx (exported from model.safetensors): $(printf '%064d' 7)  (matches the pinned hash)" ;;
  selftest) if [ -n "$BREAK_SELFTEST" ]; then echo "llama.cpp self-test FAILED: the kernels check: SIGILL" >&2; exit 1; fi
            echo "llama.cpp self-test passed: answered 'Paris.'" >&2; echo '{}' > "$3" ;;
  ask) case "$*" in *--docs*) echo "Odile [1] keeper.txt" ;; *) echo "Paris." ;; esac ;;
  docs) case "$2" in
          add) if [ -n "$BREAK_DOCS" ]; then echo "Traceback: lark grammar missing" >&2; exit 1; fi ;;
          search) case "$3" in
                    scans) printf '[1] /tmp/scans/smoke-scan.pdf (page 1 \302\267 OCR)\n    The harbour master of Cape Verity is named Tobias Renner.\n' ;;
                    *) echo "[1] $4/keeper.txt" ;;
                  esac ;;
        esac ;;
  models) case "$2" in
            search) echo "qwen2.5-0.5b-instruct-q4_k_m" ;;
            download) if [ -n "$HF_HUB_OFFLINE" ]; then echo "hearth: Hugging Face offline mode (HF_HUB_OFFLINE) is set" >&2; exit 1; fi
                      echo "hearth: Your organisation has turned model downloads off on this computer (Smoke test policy (ticket 42))." >&2; exit 1 ;;
          esac ;;
esac
"""
GUI = r"""#!/bin/sh
if [ -n "$HEARTH_STARTUP_PROBE" ]; then echo "interactive after 1.0 s"; exit 0; fi
sleep 30
"""


def smoke(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    app = tmp_path / "app"
    app.mkdir(exist_ok=True)
    for name, text in (("hearth", GOOD), ("hearth-gui", GUI)):
        (app / name).write_text(text)
        (app / name).chmod(0o755)
    return subprocess.run(
        ["bash", str(ROOT / "packaging" / "linux" / "smoke.sh"), str(app)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


def test_every_step_passes_on_an_app_that_answers(tmp_path: Path) -> None:
    # As scripts/test runs it: HF_HUB_OFFLINE=1 must not reach the app (the fake refuses the
    # download for HF_HUB_OFFLINE instead of the policy, as the real one does).
    result = smoke(tmp_path, HF_HUB_OFFLINE="1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "smoke test passed: 14 steps offline" in result.stdout
    assert "-- selftest-host" in result.stdout
    assert "-- policy-refusal" in result.stdout and "-- window:" in result.stdout


def test_a_failing_step_is_named_with_its_output(tmp_path: Path) -> None:
    result = smoke(tmp_path, BREAK_DOCS="1")
    assert result.returncode == 1
    assert "smoke test FAILED at step 'docs-add'" in result.stderr
    assert "Traceback: lark grammar missing" in result.stderr


def test_a_build_whose_llama_cpp_fails_its_self_test_fails_the_smoke_test(tmp_path: Path) -> None:
    result = smoke(tmp_path, BREAK_SELFTEST="1")
    assert result.returncode == 1
    assert "smoke test FAILED at step 'selftest-host'" in result.stderr
    assert "SIGILL" in result.stderr


def test_a_build_whose_embedder_needs_torch_fails_the_smoke_test(tmp_path: Path) -> None:
    """Issue 33: the release ships the embedder's ONNX export and no torch; a bundle whose
    embedder would run on torch (the export left out) is refused at the doctor step."""
    result = smoke(tmp_path, TORCH_EMBEDDER="1")
    assert result.returncode == 1
    assert "smoke test FAILED at step 'doctor'" in result.stderr
    assert "runs on onnxruntime, float32, on the ONNX export shipped" in result.stderr
