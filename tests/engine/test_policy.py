"""Machine policy locks settings; an unreadable policy fails closed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from engine import policy
from engine.errors import SettingsError
from engine.settings import Settings


def test_policy_locks_settings_with_its_reason(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(
        json.dumps(
            {
                "reason": "Set by Example Corp IT",
                "settings": {
                    "privacy.offline_mode": True,
                    "sampling.temperature": "hot",
                    "no.such": 1,
                },
            }
        )
    )
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


def _machine_and_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    machine = tmp_path / "etc-hearth-policy.json"
    machine.write_text(
        json.dumps(
            {
                "reason": "Set by Example Corp IT",
                "settings": {"privacy.offline_mode": True, "downloads.allowed": False},
            }
        )
    )
    monkeypatch.setattr(policy, "LINUX_PATH", machine)
    monkeypatch.setattr(policy, "MAC_MANAGED", machine)
    weaker = tmp_path / "mine.json"
    weaker.write_text(
        json.dumps({"settings": {"privacy.offline_mode": False, "sampling.max_tokens": 64}})
    )
    monkeypatch.setenv("HEARTH_POLICY", str(weaker))
    return machine


def test_a_user_cannot_escape_the_machine_policy_with_hearth_policy(
    hearth_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As an IT administrator found: HEARTH_POLICY=/nonexistent used to replace
    /etc/hearth/policy.json, so any user could download. Now the machine policy always holds,
    and an unprivileged process outside the test suite ignores the variable and says so."""
    from app import compose

    _machine_and_override(tmp_path, monkeypatch)
    monkeypatch.setattr(policy, "_is_admin", lambda: False)
    monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)
    monkeypatch.delitem(sys.modules, "pytest")  # restored by monkeypatch: "not the test suite"
    services = compose.build()
    assert services.settings.get("privacy.offline_mode") is True
    assert services.settings.get("downloads.allowed") is False
    assert "sampling.max_tokens" not in services.settings.locked
    assert services.policy is not None
    assert any("HEARTH_POLICY is ignored" in w for w in services.policy.warnings)
    services.runtime.close()
    monkeypatch.setenv("HEARTH_POLICY", str(tmp_path / "nonexistent.json"))
    assert policy.in_force().locks["downloads.allowed"][0] is False


def test_hearth_policy_where_allowed_only_adds_locks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    machine = _machine_and_override(tmp_path, monkeypatch)
    monkeypatch.setattr(policy, "_is_admin", lambda: True)
    combined = policy.in_force()
    assert combined.locks["privacy.offline_mode"] == (True, "Set by Example Corp IT")
    assert combined.locks["sampling.max_tokens"][0] == 64  # a key the machine left open
    assert combined.sources == (str(machine), f"{tmp_path / 'mine.json'} (HEARTH_POLICY)")
    assert policy.override_refusal({}, admin=False) is None  # pytest is in sys.modules


# -- macOS managed preferences and the Windows registry ---------------------------------------
# Real plist files; the Windows registry is stood in for by an object with winreg's interface
# (this machine has no Windows; docs/deploying.md marks the registry path untested there).


def test_a_macos_managed_preferences_plist_locks_settings(tmp_path) -> None:
    import plistlib

    from engine import policy

    managed = tmp_path / "org.hearth.Hearth.plist"
    managed.write_bytes(
        plistlib.dumps(
            {
                "reason": "Set by MDM",
                "settings": {"privacy.offline_mode": True, "sampling.max_tokens": 256},
            }
        )
    )
    loaded = policy.load(managed)
    assert loaded.locks == {
        "privacy.offline_mode": (True, "Set by MDM"),
        "sampling.max_tokens": (256, "Set by MDM"),
    }
    managed.write_bytes(b"<?xml garbage")
    assert policy.load(managed).locks["downloads.allowed"][0] is False  # fails closed


class StandInRegistry:
    """winreg's interface over a dict of HKLM subkeys -> [(name, value, kind)]."""

    HKEY_LOCAL_MACHINE, REG_SZ, REG_DWORD, REG_MULTI_SZ = object(), 1, 4, 7

    def __init__(self, keys: dict[str, list[tuple[str, object, int]]] | Exception) -> None:
        self.keys = keys

    def OpenKey(self, root: object, name: str):
        assert root is self.HKEY_LOCAL_MACHINE
        if isinstance(self.keys, Exception):
            raise self.keys
        if name not in self.keys:
            raise FileNotFoundError(name)
        values = self.keys[name]

        class Key:  # like winreg's PyHKEY: a context manager that is its own handle
            def __enter__(self):
                return self

            def __exit__(self, *exc: object) -> None:
                return None

        key = Key()
        key.values = values
        return key

    def EnumValue(self, key, index: int):
        if index >= len(key.values):
            raise OSError("no more data")
        return key.values[index]


def test_the_windows_policy_key_locks_settings_with_their_types() -> None:
    from engine import policy

    reg = StandInRegistry(
        {
            policy.REGISTRY_KEY: [
                ("Reason", "Set by Contoso IT", StandInRegistry.REG_SZ),
                ("privacy.offline_mode", 1, StandInRegistry.REG_DWORD),
                ("downloads.allowed", 0, StandInRegistry.REG_DWORD),
                ("sampling.max_tokens", "512", StandInRegistry.REG_SZ),
                (
                    "downloads.allowed_models",
                    ["qwen2.5-0.5b-instruct-q4_k_m"],
                    StandInRegistry.REG_MULTI_SZ,
                ),
                ("no.such.setting", 1, StandInRegistry.REG_DWORD),
            ]
        }
    )
    loaded = policy.load(registry=reg)
    assert loaded.locks == {
        "privacy.offline_mode": (True, "Set by Contoso IT"),
        "downloads.allowed": (False, "Set by Contoso IT"),
        "sampling.max_tokens": (512, "Set by Contoso IT"),
        "downloads.allowed_models": (["qwen2.5-0.5b-instruct-q4_k_m"], "Set by Contoso IT"),
    }
    assert len(loaded.warnings) == 1 and "no.such.setting" in loaded.warnings[0]
    assert policy.load(registry=StandInRegistry({})).locks == {}  # no key: no policy
    denied = policy.load(registry=StandInRegistry(PermissionError("access denied")))
    assert denied.locks["privacy.offline_mode"][0] is True  # unreadable: fails closed


def test_only_models_with_an_allowed_checksum_load_or_download(
    tmp_path, bundled_gguf, monkeypatch
) -> None:
    import shutil

    from engine import models
    from engine import paths as paths_module
    from engine.errors import DownloadsDisabled, ModelNotAllowed

    paths = paths_module.resolve().ensure()
    bundled_sha = models.find(models.BUNDLED_CHAT.id, paths).sha256
    listed = Settings.load(None, locks={"models.allowed_sha256": ([bundled_sha.upper()], "IT")})
    models.check_file(bundled_gguf, listed, paths)  # listed: loads
    models.check_file(bundled_gguf, Settings.load(None), paths)  # no list: anything
    copy = tmp_path / "same.gguf"
    shutil.copyfile(bundled_gguf, copy)
    models.check_file(copy, listed, paths)  # the bytes count, not the name
    with copy.open("r+b") as fh:  # changed after it was hashed once: hashed again
        fh.seek(-1, 2)
        fh.write(b"\x00" if fh.read(1) != b"\x00" else b"\x01")
    with pytest.raises(ModelNotAllowed, match="not on the allowed list"):
        models.check_file(copy, listed, paths)

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # scripts/test sets it; not the point
    config = models.DownloadConfig.from_settings(listed)
    other = models.DownloadRequest(
        "Qwen/Qwen2.5-0.5B-Instruct-GGUF", "model.gguf", sha256="0" * 64, catalog_id="qwen"
    )
    with pytest.raises(DownloadsDisabled, match=r"listed SHA-256.*not one of them \(IT\)"):
        models.check_request(other, config)
