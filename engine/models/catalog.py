"""The model catalog: `model_catalog.json`, validated against `model_catalog.schema.json`.

The catalog is data we ship, not code: every entry names a Hugging Face repository, a file, a
pinned revision and (where we could check it) the file's sha256. Entries without a sha256 are
verified at download time against the server's LFS sha256 instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from engine.errors import CatalogError


def _shipped(name: str) -> Path:
    """The catalog lives at the top of the repository (a source checkout, an editable install);
    wheels and the frozen app carry it inside the engine package (setup.py, hearth.spec)."""
    engine_package = Path(__file__).resolve().parents[1]
    packaged = engine_package / name
    return packaged if packaged.exists() else engine_package.parent / name


CATALOG_PATH = _shipped("model_catalog.json")
SCHEMA_PATH = _shipped("model_catalog.schema.json")


@dataclass(frozen=True)
class Architecture:
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    embedding_length: int
    vocab_size: int
    tied_embeddings: bool


@dataclass(frozen=True)
class CatalogModel:
    """One downloadable model file."""

    id: str
    name: str
    family: str
    parameters: int
    quantization: str
    format: str
    context_length: int
    license_spdx: str
    license_url: str
    repo: str
    file: str
    revision: str
    revision_pinned: bool
    size_bytes: int
    size_exact: bool
    sha256: str | None
    sha256_source: str
    chat_template: str | None
    defaults: dict[str, Any]
    tags: tuple[str, ...]
    description: str
    architecture: Architecture
    bundled_as: str | None = None

    @property
    def title(self) -> str:
        return f"{self.name} ({self.quantization})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "family": self.family,
            "parameters": self.parameters,
            "quantization": self.quantization,
            "format": self.format,
            "context_length": self.context_length,
            "license": {"spdx": self.license_spdx, "url": self.license_url},
            "repo": self.repo,
            "file": self.file,
            "revision": self.revision,
            "revision_pinned": self.revision_pinned,
            "size_bytes": self.size_bytes,
            "size_exact": self.size_exact,
            "sha256": self.sha256,
            "sha256_source": self.sha256_source,
            "tags": list(self.tags),
            "description": self.description,
            "defaults": dict(self.defaults),
            "bundled_as": self.bundled_as,
        }

    def matches(self, text: str) -> bool:
        """Case-insensitive match of every word in `text` against the entry's descriptive fields."""
        haystack = " ".join(
            [
                self.id,
                self.name,
                self.family,
                self.quantization,
                self.repo,
                self.description,
                self.license_spdx,
                *self.tags,
            ]
        ).lower()
        return all(word in haystack for word in text.lower().split())


def _model(raw: dict[str, Any]) -> CatalogModel:
    return CatalogModel(
        id=raw["id"],
        name=raw["name"],
        family=raw["family"],
        parameters=raw["parameters"],
        quantization=raw["quantization"],
        format=raw["format"],
        context_length=raw["context_length"],
        license_spdx=raw["license"]["spdx"],
        license_url=raw["license"]["url"],
        repo=raw["repo"],
        file=raw["file"],
        revision=raw["revision"],
        revision_pinned=raw["revision_pinned"],
        size_bytes=raw["size_bytes"],
        size_exact=raw["size_exact"],
        sha256=raw["sha256"],
        sha256_source=raw["sha256_source"],
        chat_template=raw["chat_template"],
        defaults=dict(raw["defaults"]),
        tags=tuple(raw["tags"]),
        description=raw["description"],
        architecture=Architecture(**raw["architecture"]),
        bundled_as=raw.get("bundled_as"),
    )


def validate(document: Any) -> None:
    """Raise CatalogError unless `document` satisfies the schema and has unique ids."""
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top level)"
        raise CatalogError("The model catalog is not valid.", f"{where}: {first.message}")
    ids = [m["id"] for m in document["models"]]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise CatalogError("The model catalog lists a model twice.", ", ".join(duplicates))


@dataclass(frozen=True)
class Catalog:
    models: tuple[CatalogModel, ...]

    def get(self, model_id: str) -> CatalogModel:
        for m in self.models:
            if m.id == model_id:
                return m
        raise CatalogError(
            f"The catalog has no model called “{model_id}”. "
            "`hearth models search` lists what it has."
        )

    def find(self, model_id: str) -> CatalogModel | None:
        return next((m for m in self.models if m.id == model_id), None)

    def search(self, text: str = "") -> list[CatalogModel]:
        return [m for m in self.models if m.matches(text)]

    def by_sha256(self, sha256: str) -> CatalogModel | None:
        return next((m for m in self.models if m.sha256 == sha256), None)


def load(path: Path | None = None) -> Catalog:
    """Read a catalog file: the shipped one by default, or `path`, which is checked against
    the schema in full. The shipped catalog is checked against it by the test suite
    (tests/engine/test_catalog.py) and so by every build; at run time it is parsed only,
    because importing jsonschema cost up to 2 s of the interpreter, taken from the window
    while it streamed the first answer. A damaged shipped catalog is still refused."""
    target = path or CATALOG_PATH
    mtime = target.stat().st_mtime_ns if target.exists() else 0
    return _load_cached(str(target), mtime, path is not None)


@lru_cache(maxsize=4)
def _load_cached(path_str: str, _mtime: int, check_schema: bool) -> Catalog:
    path = Path(path_str)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogError("The model catalog is missing.", str(path)) from None
    except (OSError, ValueError) as exc:
        raise CatalogError("The model catalog could not be read.", f"{path}: {exc}") from None
    if check_schema:
        validate(document)
    try:
        models = tuple(_model(m) for m in document["models"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CatalogError("The model catalog is not valid.", f"{path}: {exc!r}") from None
    ids = [m.id for m in models]
    if len(set(ids)) != len(ids):
        raise CatalogError("The model catalog lists a model twice.", str(path))
    return Catalog(models)
