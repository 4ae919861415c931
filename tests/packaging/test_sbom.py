"""packaging/sbom.py writes a CycloneDX 1.6 SBOM that validates against the CycloneDX schema and
names what a build ships: the Python packages with purls, both bundled models with the SHA-256
of their real files, and llama.cpp with how it was built."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from engine.models import bundled

ROOT = Path(__file__).resolve().parents[2]


def test_sbom_validates_and_names_packages_models_and_llama_cpp(tmp_path: Path) -> None:
    out = tmp_path / "hearth.cdx.json"
    export = tmp_path / "embedder-onnx"  # made as build.sh makes it
    subprocess.run(
        [sys.executable, "-m", "engine.documents.onnx_export", str(export)],
        check=True,
        capture_output=True,
        timeout=300,
        cwd=ROOT,
    )
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "packaging" / "sbom.py"),
            "--python",
            sys.executable,
            "--embedder-export",
            str(export),
            "-o",
            str(out),
        ],
        check=True,
        timeout=300,
    )
    text = out.read_text(encoding="utf-8")
    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    assert errors is None, errors

    bom = json.loads(text)
    assert bom["metadata"]["component"]["name"] == "hearth"
    by_name = {c["name"].lower(): c for c in bom["components"]}
    for package in ("llama_cpp_python", "onnxruntime", "chromadb", "pyside6_essentials", "jinja2"):
        assert by_name[package]["purl"].startswith("pkg:pypi/"), package
    # torch and friends export the embedder at build time; the app does not carry them.
    for build_only in ("torch", "sentence-transformers", "transformers", "scipy", "onnx"):
        assert build_only not in by_name and build_only.replace("-", "_") not in by_name
    # The dev venv holds test and build tools; the SBOM lists only what the app runs on.
    for tool in ("pytest", "mypy", "openai", "pyinstaller", "ruff", "pip-audit"):
        assert tool not in by_name and tool.replace("-", "_") not in by_name, tool

    models = {c["bom-ref"]: c for c in bom["components"] if c["type"] == "machine-learning-model"}
    assert set(models) == {m.id for m in bundled.ALL}
    for m in bundled.ALL:
        assert models[m.id]["hashes"] == [{"alg": "SHA-256", "content": m.sha256}]
    # The embedder ships as its export: the file's own hash, as the export recorded it.
    props = {p["name"]: p["value"] for p in models[bundled.EMBEDDER.id]["properties"]}
    record = json.loads((export / "hearth-export.json").read_text())
    assert props["hearth:shipped-sha256"] == record["onnx_sha256"]
    assert props["hearth:shipped-as"].startswith("onnx/model.onnx")

    llama = by_name["llama.cpp (ggml)"]
    props = {p["name"]: p["value"] for p in llama["properties"]}
    assert props["hearth:cpu-dispatch"] and props["hearth:cpu-kernels"]

    root_deps = next(
        d for d in bom["dependencies"] if d["ref"] == bom["metadata"]["component"]["bom-ref"]
    )
    assert "native:llama.cpp" in root_deps["dependsOn"]
