"""The models this installation can run: the bundled one and GGUF files in the models folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import bundled, gguf
from engine.errors import BundledAssetMissing, InvalidModelFile, ModelNotFound
from engine.paths import DataPaths


@dataclass(frozen=True)
class InstalledModel:
    id: str
    path: Path
    source: str  # "bundled" or "models folder"
    info: gguf.GGUFInfo | None
    problem: str | None = None  # why it cannot be used, if it cannot

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "path": str(self.path), "source": self.source,
                               "usable": self.problem is None, "problem": self.problem}
        if self.info is not None:
            out.update({k: v for k, v in self.info.summary().items() if k != "path"})
        return out


def _entry(model_id: str, path: Path, source: str) -> InstalledModel:
    try:
        return InstalledModel(model_id, path, source, gguf.inspect(path))
    except InvalidModelFile as exc:
        return InstalledModel(model_id, path, source, None, exc.user_message)


def installed(paths: DataPaths) -> list[InstalledModel]:
    """Every model we can offer, each validated (a broken file is listed with its problem)."""
    out: list[InstalledModel] = []
    try:
        out.append(_entry(bundled.CHAT.id, bundled.CHAT.path(), "bundled"))
    except BundledAssetMissing as exc:
        out.append(InstalledModel(bundled.CHAT.id, Path(bundled.CHAT.relative_path), "bundled",
                                  None, exc.user_message))
    if paths.models.is_dir():
        for path in sorted(paths.models.glob("*.gguf")):
            out.append(_entry(path.stem, path, "models folder"))
    return out


def resolve(model: str, paths: DataPaths) -> Path:
    """A model id ('bundled:…', a file stem in the models folder) or a path -> a GGUF path."""
    spec = bundled.by_id(model)
    if spec is not None:
        return spec.path()
    candidate = paths.models / f"{model}.gguf"
    if candidate.is_file():
        return candidate
    as_path = Path(model).expanduser()
    if as_path.suffix.lower() == ".gguf" or as_path.exists():
        if not as_path.is_file():
            raise ModelNotFound(f"There is no model file at “{as_path}”.")
        return as_path.resolve()
    raise ModelNotFound(
        f"No installed model is called “{model}”. `hearth models list` shows what is installed.")
