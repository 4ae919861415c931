"""Find GGUF files that other apps already downloaded, to offer them without copying.

We look where the Hugging Face cache, LM Studio, GPT4All, Jan and Ollama keep models, plus
folders the user names. The walk does not follow directory links (so a link loop cannot trap
it), resolves file links (the Hugging Face cache's snapshots are links into its blob store),
stops at a fixed depth and file count, and only reads each file's header.

Ollama keeps GGUF files without a .gguf name, as content-addressed blobs
(`models/blobs/sha256-<hex>`), and names them in manifests
(`models/manifests/<registry>/<namespace>/<model>/<tag>`, JSON whose layer of media type
`application/vnd.ollama.image.model` is the weights): we read the manifests and use the blob in
place, labelled with Ollama's own name (`llama3.2:3b`). Jan (0.6 and later) lists each model in
`llamacpp/models/<id>/model.yml`, whose `model_path` may point outside its folder (an imported
file); older Jan kept `.gguf` files under `~/jan/models`.
"""

from __future__ import annotations

import json
import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import gguf
from engine.errors import InvalidModelFile

MAX_DEPTH = 8
MAX_FILES = 2000


@dataclass(frozen=True)
class Found:
    path: Path  # as found (a snapshot link in the HF cache)
    real_path: Path
    app: str
    size: int
    name: str | None
    quantization: str | None
    problem: str | None
    label: str | None = None  # the other app's own name for it (Ollama's "llama3.2:3b")

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "real_path": str(self.real_path),
            "app": self.app,
            "size": self.size,
            "name": self.name,
            "quantization": self.quantization,
            "usable": self.problem is None,
            "problem": self.problem,
            "label": self.label,
        }


def known_locations(
    environ: dict[str, str] | None = None, home: Path | None = None
) -> list[tuple[str, Path]]:
    env = dict(os.environ) if environ is None else environ
    home = home or Path.home()
    hf = env.get("HF_HUB_CACHE") or (
        str(Path(env["HF_HOME"]) / "hub")
        if env.get("HF_HOME")
        else str(home / ".cache" / "huggingface" / "hub")
    )
    out = [
        ("Hugging Face cache", Path(hf)),
        ("LM Studio", home / ".lmstudio" / "models"),
        ("LM Studio", home / ".cache" / "lm-studio" / "models"),
    ]
    system = platform.system()
    if system == "Darwin":
        support = home / "Library" / "Application Support"
        out.append(("GPT4All", support / "nomic.ai" / "GPT4All"))
        out.append(("Jan", support / "Jan" / "data" / "llamacpp" / "models"))
    elif system == "Windows":
        local = Path(env.get("LOCALAPPDATA", home / "AppData" / "Local"))
        roaming = Path(env.get("APPDATA", home / "AppData" / "Roaming"))
        out.append(("GPT4All", local / "nomic.ai" / "GPT4All"))
        out.append(("Jan", roaming / "Jan" / "data" / "llamacpp" / "models"))
    else:
        data = Path(env.get("XDG_DATA_HOME", home / ".local" / "share"))
        out.append(("GPT4All", data / "nomic.ai" / "GPT4All"))
        out.append(("Jan", data / "Jan" / "data" / "llamacpp" / "models"))
    out.append(("Jan", home / "jan" / "models"))  # Jan before 0.6, on every platform
    ollama = env.get("OLLAMA_MODELS")
    out.append(("Ollama", Path(ollama) if ollama else home / ".ollama" / "models"))
    if system == "Linux":  # the system service's own user
        out.append(("Ollama", Path("/usr/share/ollama/.ollama/models")))
    return out


OLLAMA_WEIGHTS = "application/vnd.ollama.image.model"
_DIGEST = re.compile(r"^sha256[:-]([0-9a-f]{64})$")


def ollama_models(root: Path) -> list[tuple[Path, str]]:
    """(blob, "model:tag") for each model Ollama's manifests under `root` name."""
    manifests = root / "manifests"
    if not manifests.is_dir():
        return []
    out = []
    for path in _walk(manifests, lambda _name: True):
        try:
            if path.stat().st_size > 1_000_000:  # a manifest is a few hundred bytes
                continue
            doc = json.loads(path.read_text(encoding="utf-8"))
            layers = doc.get("layers", []) if isinstance(doc, dict) else []
        except (OSError, ValueError):
            continue
        for layer in layers:
            if not isinstance(layer, dict) or layer.get("mediaType") != OLLAMA_WEIGHTS:
                continue
            match = _DIGEST.match(str(layer.get("digest", "")))
            if match is None:
                continue
            for name in (f"sha256-{match[1]}", f"sha256:{match[1]}"):  # newer, older Ollama
                if (root / "blobs" / name).is_file():
                    out.append((root / "blobs" / name, _ollama_name(path.relative_to(manifests))))
                    break
    return out


def _ollama_name(rel: Path) -> str:
    """manifests/registry.ollama.ai/library/llama3.2/3b -> llama3.2:3b; other namespaces and
    registries are kept, as `ollama list` shows them."""
    parts = list(rel.parts)
    if len(parts) < 2:
        return rel.as_posix()
    model, tag = "/".join(parts[:-1]), parts[-1]
    model = model.removeprefix("registry.ollama.ai/").removeprefix("library/")
    return f"{model}:{tag}"


def jan_models(root: Path) -> list[tuple[Path, str]]:
    """(file, Jan's id) for each model.yml under `root` whose model_path is a file elsewhere
    (files inside `root` are found by the walk)."""
    out = []
    for yml in _walk(root, lambda name: name == "model.yml"):
        try:
            text = yml.read_text(encoding="utf-8", errors="replace")[:100_000]
        except OSError:
            continue
        match = re.search(r"^model_path:\s*['\"]?(.+?)['\"]?\s*$", text, re.M)
        if match is None:
            continue
        target = Path(match[1]).expanduser()
        if not target.is_absolute():
            target = yml.parent / target
        if target.is_file() and not target.resolve().is_relative_to(root.resolve()):
            out.append((target, yml.parent.name))
    return out


def _walk(root: Path, wanted: Any = None) -> list[Path]:
    """Files under `root` that `wanted(name)` accepts (default: GGUF names), bounded."""
    wanted = wanted or (lambda name: name.lower().endswith(".gguf"))
    found: list[Path] = []
    root_depth = len(root.parts)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        if len(Path(dirpath).parts) - root_depth >= MAX_DEPTH:
            dirnames[:] = []
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if wanted(name):
                found.append(Path(dirpath) / name)
                if len(found) >= MAX_FILES:
                    return found
    return found


def discover(
    extra_folders: list[str] | tuple[str, ...] = (),
    locations: list[tuple[str, Path]] | None = None,
    exclude: Path | None = None,
) -> list[Found]:
    """GGUF files in the known places and `extra_folders`, each validated by its header.

    `exclude` (our own models folder) is skipped: those are installed already.
    """
    places = list(known_locations() if locations is None else locations)
    places += [("your folder", Path(f).expanduser()) for f in extra_folders]
    seen: set[Path] = set()
    out: list[Found] = []
    excluded = exclude.resolve() if exclude and exclude.exists() else None
    for app, root in places:
        if not root.is_dir():
            continue
        root = root.resolve()
        labelled: list[tuple[Path, str | None]]
        if app == "Ollama":  # blobs without a .gguf name: only its manifests say which
            labelled = [(p, label) for p, label in ollama_models(root)]
        else:
            labelled = [(p, None) for p in _walk(root)]
        if app == "Jan":
            labelled += [(p, label) for p, label in jan_models(root)]
        for path, label in labelled:
            try:
                real = path.resolve(strict=True)
            except (OSError, RuntimeError):  # dangling link or a link loop
                continue
            if real in seen or not real.is_file():
                continue
            if excluded is not None and real.is_relative_to(excluded):
                continue
            seen.add(real)
            try:
                info = gguf.inspect(real)
                out.append(
                    Found(
                        path,
                        real,
                        app,
                        real.stat().st_size,
                        info.name,
                        info.quantization,
                        None,
                        label,
                    )
                )
            except InvalidModelFile as exc:
                out.append(
                    Found(path, real, app, real.stat().st_size, None, None, exc.user_message, label)
                )
    return out
