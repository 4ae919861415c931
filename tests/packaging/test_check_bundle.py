"""packaging/check_bundle.py: the allow-list over a frozen folder that build.sh runs. A folder
frozen from a dev venv (test frameworks, the OpenAI client, torch's test programs, the build
host's CUDA runtime, torch and what only the embedder's build-time export needs) fails; one
with only what the app needs passes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def check(folder: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "packaging" / "check_bundle.py"), str(folder), *extra],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _touch(path: Path, data: bytes = b"x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_only_what_the_app_runs_on_passes(tmp_path: Path) -> None:
    app = tmp_path / "hearth"
    for rel in (
        "hearth",
        "_internal/engine/__init__.pyc",
        "_internal/numpy/__init__.pyc",  # a runtime requirement (through chromadb and others)
        "_internal/chromadb/__init__.pyc",
        "_internal/onnxruntime/capi/onnxruntime_pybind11_state.so",
        "_internal/json/__init__.pyc",  # the standard library
        "_internal/libpython3.11.so.1.0",
        "_internal/chromadb-1.5.9.dist-info/METADATA",
    ):
        _touch(app / rel)
    result = check(app)
    assert result.returncode == 0, result.stderr
    assert "only what the app runs on" in result.stdout

    for rel in (
        "_internal/pytest/__init__.pyc",
        "_internal/openai/__init__.pyc",
        "_internal/mypy/__init__.pyc",
        "_internal/chromadb/test/test_api.pyc",
        "_internal/torch/bin/test_api",
        "_internal/torch/bin/protoc-3.13.0.0",
        "_internal/libcudart.so.13",
        "_internal/pytest-8.0.0.dist-info/METADATA",
        # Hearth requires torch, but only to export the embedder when the release is built.
        "_internal/torch/__init__.pyc",
        "_internal/sentence_transformers/__init__.pyc",
        "_internal/transformers/__init__.pyc",
        "_internal/scipy/__init__.pyc",
        "_internal/torch-2.13.0+cpu.dist-info/METADATA",
    ):
        _touch(app / rel)
    result = check(app)
    assert result.returncode == 1
    for needle in (
        "_internal/pytest",
        "_internal/openai",
        "_internal/mypy",
        "chromadb/test/test_api.pyc",
        "torch/bin/test_api",
        "protoc-3.13.0.0",
        "CUDA runtime library from the build host: libcudart.so.13",
        "metadata of a package the app does not need: pytest-8.0.0.dist-info",
        "not needed at run time: _internal/torch",
        "not needed at run time: _internal/sentence_transformers",
        "not needed at run time: _internal/transformers",
        "not needed at run time: _internal/scipy",
        "metadata of a package the app does not need: torch-2.13.0+cpu.dist-info",
    ):
        assert needle in result.stderr, (needle, result.stderr)
    # A build that ships the CUDA runtime on purpose says so.
    assert "libcudart" not in check(app, "--cuda-libraries").stderr
