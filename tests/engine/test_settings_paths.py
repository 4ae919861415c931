"""Settings follow one schema; HEARTH_HOME moves every folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine import paths, settings
from engine.errors import SettingsError
from engine.settings import Settings


def test_hearth_home_moves_all_data(tmp_path: Path) -> None:
    p = paths.resolve({"HEARTH_HOME": str(tmp_path / "portable")}).ensure()
    for folder in (p.config, p.data, p.cache, p.logs, p.models):
        assert folder.is_dir() and (tmp_path / "portable") in folder.parents


def test_platform_dirs_without_hearth_home() -> None:
    p = paths.resolve({})
    assert "Hearth" in str(p.data) and "Hearth" in str(p.config)


def test_defaults_roundtrip_and_validation(tmp_path: Path) -> None:
    file = tmp_path / "settings.json"
    s = Settings.load(file)
    assert s.get("inference.context_length") == 4096
    s.set("sampling.temperature", 0)  # an int is accepted for a float setting
    s.set("chat.stop_strings", ["###"])
    with pytest.raises(SettingsError, match="at most"):
        s.set("sampling.top_p", 1.5)
    with pytest.raises(SettingsError, match="no setting"):
        s.set("nope", 1)
    s.save()
    stored = json.loads(file.read_text())
    assert stored["version"] == settings.SCHEMA_VERSION
    assert stored["values"] == {"sampling.temperature": 0.0, "chat.stop_strings": ["###"]}
    again = Settings.load(file)
    assert again.get("sampling.temperature") == 0.0 and again.get("chat.stop_strings") == ["###"]


def test_bad_file_and_bad_values_fall_back_with_warnings(tmp_path: Path) -> None:
    file = tmp_path / "settings.json"
    file.write_text("{not json")
    assert Settings.load(file).warnings
    file.write_text(json.dumps({"version": 1, "values": {"sampling.top_k": "lots", "mystery": 1}}))
    s = Settings.load(file)
    assert s.get("sampling.top_k") == 40
    assert len(s.warnings) == 2


def test_locked_setting_refuses_changes() -> None:
    s = Settings.load(None, locks={"privacy.offline_mode": (True, "IT policy: offline only")})
    assert s.get("privacy.offline_mode") is True
    with pytest.raises(SettingsError, match="IT policy"):
        s.set("privacy.offline_mode", False)


def test_every_setting_is_described() -> None:
    for entry in settings.describe():
        assert entry["description"] and entry["key"].count(".") == 1
        spec = settings._BY_KEY[entry["key"]]
        assert spec.validate(spec.default) == spec.default
