"""The models this installation can run, and the registry that remembers where they came from.

Three kinds of entry: the bundled model; files in our models folder (downloaded, copied in on
import, or dropped there by hand); and files elsewhere that the user chose to use in place
(an import without copying, or a model another app downloaded). The registry
(`models/registry.json`) is small JSON written atomically; a lost or corrupt registry costs only
provenance, never a model file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import files, gguf
from engine.errors import BundledAssetMissing, HearthError, InvalidModelFile, ModelNotFound
from engine.models import bundled, catalog
from engine.paths import DataPaths

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InstalledModel:
    id: str
    path: Path
    source: str  # "bundled", "downloaded", "imported", "pack", "in place", "models folder"
    info: gguf.GGUFInfo | None
    problem: str | None = None  # why it cannot be used, if it cannot
    catalog_id: str | None = None
    sha256: str | None = None

    @property
    def name(self) -> str:
        """For people: the bundled or catalog title, else the name inside the file, else
        the id (the id is for commands and the API)."""
        spec = bundled.by_id(self.id)
        if spec is not None:
            return spec.name
        entry = catalog.load().find(self.catalog_id) if self.catalog_id else None
        if entry is not None:
            return entry.title
        return (self.info.name if self.info is not None and self.info.name else None) or self.id

    @property
    def owned(self) -> bool:
        """Whether deleting the model deletes the file (only files in our models folder)."""
        return self.source in ("downloaded", "imported", "pack", "models folder")

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "path": str(self.path),
            "source": self.source,
            "usable": self.problem is None,
            "problem": self.problem,
            "catalog_id": self.catalog_id,
            "sha256": self.sha256,
        }
        if self.info is not None:
            out.update({k: v for k, v in self.info.summary().items() if k != "path"})
        return out


def slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-.")
    return s[:80] or "model"


class Registry:
    """models/registry.json: id -> where the file is and where it came from."""

    def __init__(self, paths: DataPaths) -> None:
        self.paths = paths
        self.path = paths.models / "registry.json"

    def entries(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("model registry unreadable, starting empty: %s", exc)
            return {}
        models = data.get("models") if isinstance(data, dict) else None
        return {k: v for k, v in (models or {}).items() if isinstance(v, dict) and "path" in v}

    def _write(self, entries: dict[str, dict[str, Any]]) -> None:
        self.paths.models.mkdir(parents=True, exist_ok=True)
        files.write_atomic(self.path, json.dumps({"version": 1, "models": entries}, indent=1))

    def _unique_id(self, wanted: str, entries: dict[str, Any]) -> str:
        candidate, n = wanted, 2
        while candidate in entries or bundled.by_id(candidate):
            candidate, n = f"{wanted}-{n}", n + 1
        return candidate

    def put(self, model_id: str, record: dict[str, Any]) -> str:
        entries = self.entries()
        existing = next((k for k, v in entries.items() if v["path"] == record["path"]), None)
        model_id = existing or self._unique_id(model_id, entries)
        entries[model_id] = {**record, "added": time.strftime("%Y-%m-%dT%H:%M:%S")}
        self._write(entries)
        return model_id

    def remove(self, model_id: str) -> None:
        entries = self.entries()
        if entries.pop(model_id, None) is not None:
            self._write(entries)


def _entry(model_id: str, path: Path, source: str, **extra: Any) -> InstalledModel:
    if not path.is_file():
        return InstalledModel(model_id, path, source, None, "The file is missing.", **extra)
    try:
        return InstalledModel(model_id, path, source, gguf.inspect(path), **extra)
    except InvalidModelFile as exc:
        return InstalledModel(model_id, path, source, None, exc.user_message, **extra)


def installed(paths: DataPaths) -> list[InstalledModel]:
    """Every model we can offer, each validated (a broken file is listed with its problem)."""
    out: list[InstalledModel] = []
    try:
        out.append(
            _entry(
                bundled.CHAT.id,
                bundled.CHAT.path(),
                "bundled",
                catalog_id="smollm2-135m-instruct-q4_1",
                sha256=bundled.CHAT.sha256,
            )
        )
    except BundledAssetMissing as exc:
        out.append(
            InstalledModel(
                bundled.CHAT.id, Path(bundled.CHAT.relative_path), "bundled", None, exc.user_message
            )
        )
    registered: set[Path] = set()
    for model_id, rec in sorted(Registry(paths).entries().items()):
        path = Path(rec["path"])
        registered.add(path)
        out.append(
            _entry(
                model_id,
                path,
                rec.get("source", "imported"),
                catalog_id=rec.get("catalog_id"),
                sha256=rec.get("sha256"),
            )
        )
    if paths.models.is_dir():
        taken = {m.id for m in out}
        for path in sorted(paths.models.glob("*.gguf")):
            if path not in registered:
                model_id = path.stem if path.stem not in taken else f"{path.stem}-file"
                out.append(_entry(model_id, path, "models folder"))
    return out


def display_name(model: str) -> str:
    """A name for people: the bundled or catalog title, else the id as given."""
    spec = bundled.by_id(model)
    if spec is not None:
        return spec.name
    entry = catalog.load().find(model)
    return entry.title if entry is not None else model


def find(model: str, paths: DataPaths) -> InstalledModel | None:
    return next((m for m in installed(paths) if m.id == model), None)


def locate(model: str, paths: DataPaths) -> Path | None:
    """The file of an installed model id (bundled, registered, a file stem in the models
    folder), without validating it; never a path given as the id. None when nothing is."""
    spec = bundled.by_id(model)
    if spec is not None:
        return spec.path()
    rec = Registry(paths).entries().get(model)
    if rec is not None:
        return Path(rec["path"])
    candidate = paths.models / f"{model}.gguf"
    if "/" not in model and "\\" not in model and candidate.is_file():
        return candidate
    return None


def resolve(model: str, paths: DataPaths) -> Path:
    """A model id (bundled, registered, a file stem in the models folder) or a path -> a GGUF."""
    found = locate(model, paths)
    if found is not None:
        return found
    as_path = Path(model).expanduser()
    if as_path.suffix.lower() == ".gguf" or as_path.exists():
        if not as_path.is_file():
            raise ModelNotFound(f"There is no model file at “{as_path}”.")
        return as_path.resolve()
    raise not_installed(model)


def not_installed(model: str) -> ModelNotFound:
    return ModelNotFound(
        f"No installed model is called “{model}”. `hearth models list` shows what is installed."
    )


@dataclass(frozen=True)
class ImportProgress:
    done: int
    total: int


@dataclass(frozen=True)
class Imported:
    model: InstalledModel


def import_model(
    source: Path,
    paths: DataPaths,
    copy: bool = True,
) -> Iterator[ImportProgress | Imported]:
    """Validate a local GGUF, then copy it into the models folder or register it in place.

    A copy goes to a temporary name and is renamed when complete, so a cancelled or failed
    copy never leaves a half file that looks like a model.
    """
    source = source.expanduser().resolve()
    if not source.is_file():
        raise ModelNotFound(f"There is no file at “{source}”.")
    info = gguf.inspect(source)  # raises InvalidModelFile with the reason
    registry = Registry(paths)
    if not copy:
        model_id = registry.put(slug(source.stem), {"path": str(source), "source": "in place"})
        yield Imported(InstalledModel(model_id, source, "in place", info))
        return
    size = source.stat().st_size
    files.check_space(paths.models, size, size)
    target = files.unused_path(paths.models, source.name)
    digest = hashlib.sha256()
    for done in files.copy(source, target, digest):
        yield ImportProgress(done, size)
    model_id = registry.put(
        slug(target.stem), {"path": str(target), "source": "imported", "sha256": digest.hexdigest()}
    )
    yield Imported(InstalledModel(model_id, target, "imported", gguf.inspect(target)))


def delete(model_id: str, paths: DataPaths) -> dict[str, Any]:
    """Remove a model. Files in our models folder are deleted; files elsewhere are forgotten."""
    model = find(model_id, paths)
    if model is None:
        raise ModelNotFound(f"No installed model is called “{model_id}”.")
    if model.source == "bundled":
        raise HearthError("The bundled model is part of Hearth and cannot be deleted.")
    freed = 0
    inside = _inside(model.path, paths.models)
    if model.owned and inside and model.path.exists():
        freed = model.path.stat().st_size
        model.path.unlink()
    Registry(paths).remove(model.id)
    return {
        "id": model.id,
        "path": str(model.path),
        "deleted_file": freed > 0,
        "freed_bytes": freed,
    }


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False
