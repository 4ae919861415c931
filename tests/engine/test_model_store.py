"""Import, discovery and delete on real GGUF files in real folders."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from engine import models
from engine import paths as paths_module
from engine.errors import HearthError, InvalidModelFile
from engine.models import discovery
from engine.paths import DataPaths


@pytest.fixture
def paths() -> DataPaths:
    return paths_module.resolve().ensure()


def copy_of(src: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    return dest


def test_import_copies_after_validating_and_delete_frees_the_disk(
    paths: DataPaths, bundled_gguf: Path, tmp_path: Path
) -> None:
    source = copy_of(bundled_gguf, tmp_path / "elsewhere" / "My Model.gguf")
    events = list(models.import_model(source, paths, copy=True))
    done = events[-1]
    assert isinstance(done, models.Imported)
    assert isinstance(events[-2], models.ImportProgress) and events[-2].done == events[-2].total
    imported = done.model
    assert (
        imported.path.parent == paths.models and imported.path.read_bytes() == source.read_bytes()
    )
    assert not list(paths.models.glob(".*.partial"))
    assert imported.id in {m.id for m in models.installed(paths)}
    result = models.delete(imported.id, paths)
    assert result["deleted_file"] and result["freed_bytes"] == source.stat().st_size
    assert not imported.path.exists() and source.exists()
    assert imported.id not in {m.id for m in models.installed(paths)}


def test_import_in_place_uses_the_file_and_delete_only_forgets_it(
    paths: DataPaths, bundled_gguf: Path, tmp_path: Path
) -> None:
    source = copy_of(bundled_gguf, tmp_path / "lmstudio" / "smol.gguf")
    done = list(models.import_model(source, paths, copy=False))[-1]
    assert isinstance(done, models.Imported)
    listed = {m.id: m for m in models.installed(paths)}
    assert listed[done.model.id].path == source and listed[done.model.id].source == "in place"
    assert models.resolve(done.model.id, paths) == source
    result = models.delete(done.model.id, paths)
    assert not result["deleted_file"] and source.exists()


def test_import_refuses_a_file_that_is_not_a_gguf(paths: DataPaths, tmp_path: Path) -> None:
    bad = tmp_path / "fake.gguf"
    bad.write_bytes(b"PK\x03\x04 this is a zip, not a model" * 100)
    with pytest.raises(InvalidModelFile):
        list(models.import_model(bad, paths))
    assert not any(p.suffix == ".gguf" for p in paths.models.glob("*"))


def test_bundled_model_cannot_be_deleted(paths: DataPaths) -> None:
    with pytest.raises(HearthError, match="cannot be deleted"):
        models.delete("bundled:smollm2-135m-instruct-q4_1", paths)


def test_a_corrupt_registry_loses_provenance_not_models(
    paths: DataPaths, bundled_gguf: Path, tmp_path: Path
) -> None:
    copy_of(bundled_gguf, paths.models / "dropped.gguf")
    (paths.models / "registry.json").write_text("{not json")
    listed = {m.id: m for m in models.installed(paths)}
    assert listed["dropped"].source == "models folder" and listed["dropped"].problem is None


def test_discovery_finds_other_apps_models_without_copying(
    bundled_gguf: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    # the Hugging Face cache: snapshots/<rev>/file is a link into blobs/
    repo = home / ".cache" / "huggingface" / "hub" / "models--someone--Smol-GGUF"
    blob = copy_of(bundled_gguf, repo / "blobs" / "b179c952")
    snap = repo / "snapshots" / "abc123" / "smol-q4_1.gguf"
    snap.parent.mkdir(parents=True)
    os.symlink(os.path.relpath(blob, snap.parent), snap)
    # LM Studio: publisher/repo/file.gguf, plus a broken file and a directory link loop
    lms = home / ".lmstudio" / "models" / "publisher" / "repo"
    copy_of(bundled_gguf, lms / "model.gguf")
    (lms / "broken.gguf").write_bytes(b"GGUF" + b"\xff" * 64)
    os.symlink(home / ".lmstudio", lms / "loop")
    # a folder the user names
    mine = copy_of(bundled_gguf, tmp_path / "mine" / "x.gguf")

    found = discovery.discover([str(mine.parent)], locations=discovery.known_locations({}, home))
    by_app: dict[str, list[discovery.Found]] = {}
    for f in found:
        by_app.setdefault(f.app, []).append(f)
    hf = by_app["Hugging Face cache"]
    assert len(hf) == 1
    assert hf[0].real_path == blob.resolve() and hf[0].problem is None
    lm = {f.real_path.name: f for f in by_app["LM Studio"]}
    assert lm["model.gguf"].problem is None and lm["broken.gguf"].problem is not None
    assert [f.real_path for f in by_app["your folder"]] == [mine.resolve()]
    assert blob.exists() and mine.exists()  # nothing moved or copied


def test_discovery_finds_ollama_blobs_by_their_manifests_and_jan_models(
    bundled_gguf: Path, tmp_path: Path
) -> None:
    """Ollama names its GGUF files only by digest; its manifests say which blob holds a
    model's weights. Jan's model.yml may point at a file outside its folder."""
    import hashlib
    import json

    home = tmp_path / "home"
    ollama = home / ".ollama" / "models"
    digest = hashlib.sha256(bundled_gguf.read_bytes()).hexdigest()
    weights = copy_of(bundled_gguf, ollama / "blobs" / f"sha256-{digest}")
    template = ollama / "blobs" / f"sha256-{'1' * 64}"
    template.write_text("{{ .Prompt }}")
    manifest = ollama / "manifests" / "registry.ollama.ai" / "library" / "smollm2" / "135m"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "layers": [
                    {
                        "mediaType": "application/vnd.ollama.image.model",
                        "digest": f"sha256:{digest}",
                    },
                    {
                        "mediaType": "application/vnd.ollama.image.template",
                        "digest": f"sha256:{'1' * 64}",
                    },
                ],
            }
        )
    )
    broken = manifest.parent / "broken"
    broken.write_text("{not json")
    jan = home / ".local" / "share" / "Jan" / "data" / "llamacpp" / "models"
    copy_of(bundled_gguf, jan / "smol" / "model.gguf")
    elsewhere = copy_of(bundled_gguf, tmp_path / "downloads" / "imported.gguf")
    (jan / "imported").mkdir()
    (jan / "imported" / "model.yml").write_text(f"model_path: {elsewhere}\nname: imported\n")
    old_jan = copy_of(bundled_gguf, home / "jan" / "models" / "tinyllama" / "tiny.gguf")

    environ = {"XDG_DATA_HOME": str(home / ".local" / "share")}
    found = discovery.discover(locations=discovery.known_locations(environ, home))
    ollama_found = [f for f in found if f.app == "Ollama"]
    assert [(f.real_path, f.label, f.problem) for f in ollama_found] == [
        (weights.resolve(), "smollm2:135m", None)
    ]
    assert ollama_found[0].as_dict()["label"] == "smollm2:135m"
    jan_found = {f.real_path: f for f in found if f.app == "Jan"}
    assert set(jan_found) == {
        (jan / "smol" / "model.gguf").resolve(),
        elsewhere.resolve(),
        old_jan.resolve(),
    }
    assert jan_found[elsewhere.resolve()].label == "imported"
    assert all(f.problem is None for f in jan_found.values())
