"""Offline model packs between two real installations (two data folders): export real GGUF
files with a key made here, import them elsewhere, and refuse every way a pack can be wrong,
with nothing installed."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from engine import models
from engine import paths as paths_module
from engine.errors import ModelNotAllowed, PackError
from engine.files import sha256_file
from engine.models import packs as model_packs
from engine.paths import DataPaths
from engine.settings import Settings
from tests.gguf_tools import with_string_metadata

NO_POLICY = Settings.load(None)


def under_policy(allowed_sha256: list[str]) -> Settings:
    return Settings.load(None, locks={"models.allowed_sha256": (allowed_sha256, "IT policy")})


@pytest.fixture
def office(tmp_path: Path) -> DataPaths:
    """The machine that exports: it has two models of its own."""
    return paths_module.resolve({"HEARTH_HOME": str(tmp_path / "office")}).ensure()


@pytest.fixture
def site(tmp_path: Path) -> DataPaths:
    """The air-gapped machine that imports."""
    return paths_module.resolve({"HEARTH_HOME": str(tmp_path / "site")}).ensure()


@pytest.fixture
def two_models(office: DataPaths, bundled_gguf: Path, tmp_path: Path) -> list[str]:
    # Both differ from the bundled model (a copy of that would count as already installed).
    (tmp_path / "src").mkdir()
    first = with_string_metadata(
        bundled_gguf, tmp_path / "src" / "Helper Model.gguf", "general.name", "Helper"
    )
    second = with_string_metadata(
        bundled_gguf, tmp_path / "src" / "tuned.gguf", "general.name", "Tuned for the legal team"
    )
    ids = []
    for path in (first, second):
        *_, done = models.import_model(path, office, copy=True)
        assert isinstance(done, models.Imported)
        ids.append(done.model.id)
    return ids


@pytest.fixture
def key() -> model_packs.Ed25519PrivateKey:
    return model_packs.new_pack_key()


def export(
    ids: list[str], dest: Path, office: DataPaths, key: model_packs.Ed25519PrivateKey
) -> model_packs.Pack:
    *progress, done = model_packs.export_pack(ids, dest, office, key)
    assert isinstance(done, model_packs.PackExported)
    assert progress and progress[-1].done == progress[-1].total
    return done.pack


def installed_files(paths: DataPaths) -> list[str]:
    return (
        sorted(p.name for p in paths.models.iterdir() if p.name != "registry.json")
        if paths.models.exists()
        else []
    )


def test_a_pack_carries_models_to_another_machine_intact(
    office: DataPaths,
    site: DataPaths,
    two_models: list[str],
    key: Any,
    tmp_path: Path,
) -> None:
    pack = export(two_models, tmp_path / "usb" / "pack", office, key)
    public = model_packs.pack_public_key(key)
    assert pack.signer == public and len(pack.files) == 2
    assert (pack.folder / model_packs.MANIFEST).is_file()
    assert not list(pack.folder.rglob(".*")), "no temporary files left in the pack"

    events = list(model_packs.import_pack(pack.folder, site, NO_POLICY, [public]))
    done = events[-1]
    assert isinstance(done, model_packs.PackImported)
    stages = [e.stage for e in events[:-1]]
    # Everything is checked before anything is installed.
    assert stages.index("installing") > max(i for i, s in enumerate(stages) if s == "checking")
    by_sha = {m.sha256: m for m in done.installed}
    for f in pack.files:
        model = by_sha[f.sha256]
        assert model.path.parent == site.models
        assert sha256_file(model.path) == f.sha256
    listed = {m.id: m for m in models.installed(site)}
    for m in done.installed:
        assert listed[m.id].problem is None and listed[m.id].source == "pack"
    record = models.Registry(site).entries()[done.installed[0].id]
    assert record["pack_signer"] == model_packs.pack_key_id(public)

    # The same pack again installs nothing new.
    before = installed_files(site)
    again = list(model_packs.import_pack(pack.folder, site, NO_POLICY, [public]))[-1]
    assert isinstance(again, model_packs.PackImported)
    assert not again.installed and len(again.already_installed) == 2
    assert installed_files(site) == before


def test_a_changed_byte_in_a_model_installs_nothing(
    office: DataPaths,
    site: DataPaths,
    two_models: list[str],
    key: Any,
    tmp_path: Path,
) -> None:
    pack = export(two_models, tmp_path / "pack", office, key)
    victim = pack.folder / pack.files[1].file
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(PackError, match="SHA-256 checksum differs"):
        list(
            model_packs.import_pack(
                pack.folder, site, NO_POLICY, [model_packs.pack_public_key(key)]
            )
        )
    assert installed_files(site) == []


def test_an_edited_manifest_another_signer_or_no_signature_is_refused(
    office: DataPaths,
    site: DataPaths,
    two_models: list[str],
    key: Any,
    tmp_path: Path,
) -> None:
    pack = export(two_models[:1], tmp_path / "pack", office, key)
    public = model_packs.pack_public_key(key)
    stranger = model_packs.pack_public_key(model_packs.new_pack_key())

    with pytest.raises(PackError, match="not signed by a trusted key"):
        model_packs.read_pack(pack.folder, [stranger])
    with pytest.raises(PackError, match="No model-pack signing key is trusted"):
        model_packs.read_pack(pack.folder, [])

    manifest = pack.folder / model_packs.MANIFEST
    original = manifest.read_bytes()
    manifest.write_bytes(original.replace(b'"size": ', b'"size": 1'))
    with pytest.raises(PackError, match="not signed by a trusted key"):
        list(model_packs.import_pack(pack.folder, site, NO_POLICY, [public]))
    manifest.write_bytes(original)

    (pack.folder / model_packs.SIGNATURE).unlink()
    with pytest.raises(PackError, match="not signed"):
        list(model_packs.import_pack(pack.folder, site, NO_POLICY, [public]))
    assert installed_files(site) == []


def test_a_signed_manifest_cannot_write_outside_the_models_folder(
    site: DataPaths, key: Any, tmp_path: Path, bundled_gguf: Path
) -> None:
    # Even a trusted signer's manifest is checked: a leaked key must not mean file writes
    # anywhere on the machine.
    folder = tmp_path / "hostile"
    (folder / "models").mkdir(parents=True)
    shutil.copyfile(bundled_gguf, folder / "evil.gguf")
    manifest = {
        "format": model_packs.FORMAT,
        "version": 1,
        "models": [
            {
                "file": "models/../evil.gguf",
                "size": bundled_gguf.stat().st_size,
                "sha256": sha256_file(bundled_gguf),
                "id": "evil",
            }
        ],
    }
    data = json.dumps(manifest).encode()
    (folder / model_packs.MANIFEST).write_bytes(data)
    (folder / model_packs.SIGNATURE).write_bytes(base64.b64encode(key.sign(data)))
    with pytest.raises(PackError, match="not valid"):
        list(model_packs.import_pack(folder, site, NO_POLICY, [model_packs.pack_public_key(key)]))
    assert installed_files(site) == []


def test_policy_checksums_and_locked_keys_are_honoured(
    office: DataPaths,
    site: DataPaths,
    two_models: list[str],
    key: Any,
    tmp_path: Path,
) -> None:
    pack = export(two_models, tmp_path / "pack", office, key)
    public = model_packs.pack_public_key(key)
    only_first = [pack.files[0].sha256]
    with pytest.raises(ModelNotAllowed):
        list(model_packs.import_pack(pack.folder, site, under_policy(only_first), [public]))
    assert installed_files(site) == []
    listed = under_policy([f.sha256.upper() for f in pack.files])
    done = list(model_packs.import_pack(pack.folder, site, listed, [public]))[-1]
    assert isinstance(done, model_packs.PackImported) and len(done.installed) == 2

    assert model_packs.trusted_pack_keys([public], []) == [public]
    with pytest.raises(PackError, match="Your organisation decides"):
        model_packs.trusted_pack_keys([public], [public], locked_reason="IT policy")
    with pytest.raises(PackError, match="not a pack key"):
        model_packs.trusted_pack_keys(["ssh-ed25519 AAAA"])


def test_an_interrupted_export_is_not_a_pack(
    office: DataPaths, two_models: list[str], key: Any, tmp_path: Path
) -> None:
    dest = tmp_path / "pack"
    events = model_packs.export_pack(two_models, dest, office, key)
    next(events)  # the first block is copied
    events.close()  # the user cancelled
    assert not list(dest.rglob(".*")), "no partial file left behind"
    with pytest.raises(PackError, match="not a complete model pack"):
        model_packs.read_pack(dest, [model_packs.pack_public_key(key)])
    with pytest.raises(PackError, match="not empty"):
        list(model_packs.export_pack(two_models, dest, office, key))


def test_the_bundled_model_is_not_packed(office: DataPaths, key: Any, tmp_path: Path) -> None:
    from engine.models import bundled

    with pytest.raises(PackError, match="bundled"):
        list(model_packs.export_pack([bundled.CHAT.id], tmp_path / "p", office, key))


def test_keys_round_trip_through_files_with_a_passphrase(tmp_path: Path, key: Any) -> None:
    path = tmp_path / "pack.key"
    path.write_bytes(model_packs.pack_key_pem(key, b"open sesame"))
    loaded = model_packs.load_pack_key(path, b"open sesame")
    assert model_packs.pack_public_key(loaded) == model_packs.pack_public_key(key)
    with pytest.raises(PackError, match="could not be read"):
        model_packs.load_pack_key(path, b"wrong")
