"""Write the CycloneDX SBOM of what a release ships.

    python packaging/sbom.py --python build/venv/bin/python -o build/release/hearth.cdx.json

`--python` is the interpreter of the environment that was frozen (the release venv). Its Python
packages come from CycloneDX's own tool (cyclonedx-py environment: name, version, purl,
licences, per-package metadata). Added here, because no package manager knows them:
- the bundled chat model and embedder, as machine-learning-model components with the SHA-256
  of their weights (hashed now, and compared with the sums the app checks); the embedder ships
  as the ONNX export the build made from those weights (`--embedder-export`: the file's own
  SHA-256 is a property, hashed now and compared with the export's record);
- llama.cpp as the native library inside llama-cpp-python, with how it was built (which CPU
  kernels, runtime dispatch or not, GPU offload), since that decides what runs on a customer's
  machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# Run inside the target environment: what it has installed, not what this script's has.
PROBE = r"""
import json
from engine import __version__, files, llama_build
from engine.models import bundled
info = llama_build.build_info()
models = []
for m in bundled.ALL:
    path = m.path()
    weights = m.weights_path()
    models.append({"id": m.id, "name": m.name, "distribution": m.distribution,
                   "license": m.license, "file": weights.name,
                   "sha256": files.sha256_file(weights), "expected_sha256": m.sha256})
print(json.dumps({"version": __version__, "models": models, "llama": {
    "llama_cpp_python": info["llama_cpp_python"], "cpu_dispatch": info["cpu_dispatch"],
    "cpu_kernels": info["cpu_kernels"], "gpu_offload": info["gpu_offload"]}}))
"""


def probe(python: str) -> dict[str, Any]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "QT_QPA_PLATFORM": "offscreen"}
    out = subprocess.run(
        [python, "-c", PROBE],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=tempfile.gettempdir(),
        timeout=300,
    )
    return json.loads(out.stdout)


def python_packages(python: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "env.cdx.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "cyclonedx_py",
                "environment",
                "--sv",
                "1.6",
                "--of",
                "JSON",
                "--output-reproducible",
                "--pyproject",
                str(ROOT / "pyproject.toml"),
                "-o",
                str(out),
                python,
            ],
            check=True,
            timeout=300,
        )
        bom: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
        return bom


def extra_components(found: dict[str, Any]) -> list[dict[str, Any]]:
    components = []
    for m in found["models"]:
        if m["sha256"] != m["expected_sha256"]:
            raise SystemExit(
                f"sbom: {m['name']} does not match the checksum the app expects "
                f"({m['sha256']} != {m['expected_sha256']})"
            )
        components.append(
            {
                "type": "machine-learning-model",
                "bom-ref": m["id"],
                "name": m["name"],
                "licenses": [{"license": {"id": m["license"]}}],
                "hashes": [{"alg": "SHA-256", "content": m["sha256"]}],
                "properties": [
                    {"name": "hearth:file", "value": m["file"]},
                    {"name": "hearth:shipped-in-python-package", "value": m["distribution"]},
                ],
            }
        )
    llama = found["llama"]
    components.append(
        {
            "type": "library",
            "bom-ref": "native:llama.cpp",
            "name": "llama.cpp (ggml)",
            "description": "native library vendored and built by llama-cpp-python "
            f"{llama['llama_cpp_python']}",
            "licenses": [{"license": {"id": "MIT"}}],
            "externalReferences": [{"type": "vcs", "url": "https://github.com/ggml-org/llama.cpp"}],
            "properties": [
                {"name": "hearth:cpu-dispatch", "value": llama["cpu_dispatch"]},
                {"name": "hearth:cpu-kernels", "value": " ".join(llama["cpu_kernels"])},
                {"name": "hearth:gpu-offload", "value": str(llama["gpu_offload"]).lower()},
            ],
        }
    )
    return components


def name_local_builds(components: list[dict[str, Any]]) -> None:
    """A package installed from a wheel built here (llama-cpp-python: the set-up and
    build_llama.sh build it from PyPI's source) gets no purl from cyclonedx-py, only the
    wheel's file:// path on the build machine. It is PyPI's project at that version, built
    with flags of ours: give it its PyPI purl, say it was built here, and drop the path."""
    for c in components:
        if c.get("purl"):
            continue
        refs = c.get("externalReferences", [])
        local = [r for r in refs if str(r.get("url", "")).startswith("file://")]
        if not local:
            continue
        name = _dist_name(str(c["name"]))
        c["purl"] = f"pkg:pypi/{name}@{c['version']}"
        c["externalReferences"] = [r for r in refs if r not in local]
        c.setdefault("properties", []).append(
            {"name": "hearth:built-from", "value": "the PyPI source distribution, built here"}
        )


def runtime_distributions(python: str) -> set[str]:
    """What the app needs at run time, in the frozen environment: the release venv also holds
    PyInstaller and pip, which build the bundle but are not in it."""
    out = subprocess.run(
        [python, str(ROOT / "packaging" / "check_bundle.py"), "--runtime-distributions"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return set(out.stdout.split())


def _dist_name(name: str) -> str:
    """A distribution's name as PyPI and check_bundle.py compare it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def keep_only(bom: dict[str, Any], names: set[str]) -> None:
    gone = {c.get("bom-ref") for c in bom["components"] if _dist_name(str(c["name"])) not in names}
    bom["components"] = [c for c in bom["components"] if c.get("bom-ref") not in gone]
    deps = [d for d in bom.get("dependencies", []) if d.get("ref") not in gone]
    for d in deps:
        if "dependsOn" in d:
            d["dependsOn"] = [r for r in d["dependsOn"] if r not in gone]
    bom["dependencies"] = deps


def shipped_export(components: list[dict[str, Any]], folder: Path) -> None:
    """Name, on the embedder's component (the model whose weights the export was made from),
    the ONNX export the bundle carries in their place."""
    import hashlib

    record = json.loads((folder / "hearth-export.json").read_text(encoding="utf-8"))
    digest = hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest()
    source = [
        c
        for c in components
        if c["type"] == "machine-learning-model"
        and c["hashes"][0]["content"] == record["source_sha256"]
    ]
    if digest != record["onnx_sha256"] or len(source) != 1:
        raise SystemExit(f"sbom: the embedder export in {folder} does not match its record")
    source[0]["properties"] += [
        {"name": "hearth:shipped-as", "value": "onnx/model.onnx, exported at build time"},
        {"name": "hearth:shipped-sha256", "value": digest},
    ]


def build(python: str, embedder_export: Path | None = None) -> dict[str, Any]:
    found = probe(python)
    bom = python_packages(python)
    bom["components"] = [c for c in bom.get("components", []) if c.get("name") != "hearth"]
    keep_only(bom, runtime_distributions(python))
    name_local_builds(bom["components"])
    extras = extra_components(found)
    if embedder_export is not None:
        shipped_export(extras, embedder_export)
    bom["components"] += extras
    root = bom.setdefault("metadata", {}).setdefault("component", {})
    root.update({"type": "application", "name": "hearth", "version": found["version"]})
    deps = bom.setdefault("dependencies", [])
    root_ref = root.get("bom-ref", "hearth")
    root["bom-ref"] = root_ref
    extra_refs = [c["bom-ref"] for c in extras]
    for dep in deps:
        if dep.get("ref") == root_ref:
            dep.setdefault("dependsOn", []).extend(extra_refs)
            break
    else:
        deps.append({"ref": root_ref, "dependsOn": extra_refs})
    deps.extend({"ref": ref} for ref in extra_refs)
    return bom


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--python", default=sys.executable, help="interpreter of the environment that was frozen"
    )
    parser.add_argument("-o", "--output", required=True, type=Path)
    parser.add_argument(
        "--embedder-export", type=Path, help="the folder of the embedder's shipped ONNX export"
    )
    args = parser.parse_args()
    # Absolute, not resolved: a venv's python is a symlink that must stay inside the venv.
    python = str(Path(args.python).absolute()) if os.sep in args.python else args.python
    bom = build(python, args.embedder_export)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(bom, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    print(f"{args.output}: {len(bom['components'])} components")


if __name__ == "__main__":
    main()
