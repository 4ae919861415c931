"""Machine policy locks settings; an unreadable policy fails closed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine import policy
from engine.errors import SettingsError
from engine.settings import Settings


def test_policy_locks_settings_with_its_reason(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"reason": "Set by Example Corp IT",
                                "settings": {"privacy.offline_mode": True,
                                             "sampling.temperature": "hot",
                                             "no.such": 1}}))
    pol = policy.load(path)
    assert pol.locks == {"privacy.offline_mode": (True, "Set by Example Corp IT")}
    assert len(pol.warnings) == 2
    user_file = tmp_path / "settings.json"
    user_file.write_text(json.dumps({"version": 1, "values": {"privacy.offline_mode": False}}))
    settings = Settings.load(user_file, locks=pol.locks)
    assert settings.get("privacy.offline_mode") is True
    with pytest.raises(SettingsError, match="Example Corp IT"):
        settings.set("privacy.offline_mode", False)


def test_unreadable_policy_fails_closed_and_missing_policy_is_none(tmp_path: Path) -> None:
    bad = tmp_path / "policy.json"
    bad.write_text("{not json")
    pol = policy.load(bad)
    assert pol.locks["privacy.offline_mode"][0] is True
    assert pol.locks["downloads.allowed"][0] is False
    assert "could not be read" in pol.locks["downloads.allowed"][1]
    assert policy.load(tmp_path / "absent.json").locks == {}
    assert policy.default_path({"HEARTH_POLICY": str(bad)}) == bad
