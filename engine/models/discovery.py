"""Find GGUF files that other apps already downloaded, to offer them without copying.

We look where the Hugging Face cache, LM Studio and GPT4All keep models, plus folders the user
names. The walk does not follow directory links (so a link loop cannot trap it), resolves file
links (the Hugging Face cache's snapshots are links into its blob store), stops at a fixed
depth and file count, and only reads each file's header.
"""

from __future__ import annotations

import os
import platform
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
        out.append(("GPT4All", home / "Library" / "Application Support" / "nomic.ai" / "GPT4All"))
    elif system == "Windows":
        local = Path(env.get("LOCALAPPDATA", home / "AppData" / "Local"))
        out.append(("GPT4All", local / "nomic.ai" / "GPT4All"))
    else:
        data = Path(env.get("XDG_DATA_HOME", home / ".local" / "share"))
        out.append(("GPT4All", data / "nomic.ai" / "GPT4All"))
    return out


def _walk(root: Path) -> list[Path]:
    found: list[Path] = []
    root_depth = len(root.parts)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        if len(Path(dirpath).parts) - root_depth >= MAX_DEPTH:
            dirnames[:] = []
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.lower().endswith(".gguf"):
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
        for path in _walk(root.resolve()):
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
                    Found(path, real, app, real.stat().st_size, info.name, info.quantization, None)
                )
            except InvalidModelFile as exc:
                out.append(
                    Found(path, real, app, real.stat().st_size, None, None, exc.user_message)
                )
    return out
