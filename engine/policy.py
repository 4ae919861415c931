"""Machine policy: settings an administrator fixes for everyone on the machine.

Where it is read, by platform (``HEARTH_POLICY`` names a JSON file instead, on any platform,
for tests and special deployments):
- Linux: `/etc/hearth/policy.json`, a root-owned file:

      {"reason": "Set by Example Corp IT (ticket 1234)",
       "settings": {"privacy.offline_mode": true, "downloads.allowed": false}}

- Windows: the registry key `HKLM\\Software\\Policies\\Hearth` (Group Policy's place):
  a `Reason` string and one value per setting, named by its key (REG_DWORD for true/false and
  numbers, REG_SZ for text, REG_MULTI_SZ for lists);
- macOS: managed preferences for the domain `org.hearth.Hearth`, the file
  `/Library/Managed Preferences/org.hearth.Hearth.plist` that an MDM profile installs, with a
  `reason` string and a `settings` dictionary.

Each key it sets is locked: it keeps the policy's value and the UI shows it locked, with the
reason. A policy that exists but cannot be read fails closed: offline, no downloads.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.parsers.expat import ExpatError

from engine.errors import SettingsError
from engine.settings import declaration

log = logging.getLogger(__name__)

POLICY_ENV = "HEARTH_POLICY"
REGISTRY_KEY = r"Software\Policies\Hearth"
MAC_DOMAIN = "org.hearth.Hearth"
MAC_MANAGED = Path("/Library/Managed Preferences") / f"{MAC_DOMAIN}.plist"
DEFAULT_REASON = "Set by your organisation's policy."
FAIL_CLOSED = {"privacy.offline_mode": True, "downloads.allowed": False}


@dataclass(frozen=True)
class Policy:
    path: Path | None
    locks: dict[str, tuple[Any, str]] = field(default_factory=dict)  # key -> (value, reason)
    warnings: tuple[str, ...] = ()


def default_path(environ: dict[str, str] | None = None) -> Path | None:
    env = os.environ if environ is None else environ
    if env.get(POLICY_ENV):
        return Path(env[POLICY_ENV])
    if sys.platform.startswith("linux"):
        return Path("/etc/hearth/policy.json")
    if sys.platform == "darwin":
        return MAC_MANAGED
    return None


def load(path: Path | None = None, registry: Any = None) -> Policy:
    """Read the policy; none found means no policy. `registry` is the `winreg` module (or a
    stand-in) to read the Windows policy key from; by default, winreg on Windows."""
    if (
        path is None
        and registry is None
        and sys.platform == "win32"
        and not os.environ.get(POLICY_ENV)
    ):
        import winreg as registry  # type: ignore[import-not-found,no-redef,unused-ignore]
    if registry is not None and path is None:
        where = Path(f"HKLM\\{REGISTRY_KEY}")
        try:
            doc = _from_registry(registry)
        except ValueError as exc:
            return _fail_closed(where, exc)
        return Policy(None) if doc is None else _parse(where, doc)
    path = default_path() if path is None else path
    if path is None or not path.exists():
        return Policy(path)
    try:
        if path.suffix == ".plist":
            import plistlib

            with path.open("rb") as fh:
                doc = plistlib.load(fh)
        else:
            doc = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or not isinstance(doc.get("settings", {}), dict):
            raise ValueError('expected an object with a "settings" object')
    except (OSError, ValueError, ExpatError) as exc:  # plistlib raises all three
        return _fail_closed(path, exc)
    return _parse(path, doc)


def _fail_closed(where: Path, exc: Exception) -> Policy:
    why = f"The machine policy {where} could not be read ({exc}), so Hearth stays offline."
    log.error("%s", why)
    return Policy(where, {k: (v, why) for k, v in FAIL_CLOSED.items()}, (why,))


def _from_registry(winreg: Any) -> dict[str, Any] | None:
    """The policy key as {"reason", "settings"}, or None when there is no key."""
    try:
        key = winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, REGISTRY_KEY)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ValueError(str(exc)) from None
    doc: dict[str, Any] = {"settings": {}}
    with key:
        index = 0
        while True:
            try:
                name, value, kind = winreg.EnumValue(key, index)
            except OSError:  # no more values
                break
            index += 1
            if name.lower() == "reason":
                doc["reason"] = str(value)
                continue
            try:
                spec = declaration(name)
            except SettingsError:
                doc["settings"][name] = value  # reported as ignored by _parse
                continue
            if kind == winreg.REG_DWORD and spec.type is bool:
                value = bool(value)
            elif kind == winreg.REG_DWORD and spec.type is float:
                value = float(value)
            elif kind == winreg.REG_SZ and spec.type in (int, float):
                with contextlib.suppress(ValueError):  # left as text: _parse reports it
                    value = spec.type(value)
            doc["settings"][name] = list(value) if kind == winreg.REG_MULTI_SZ else value
    return doc


def _parse(path: Path, doc: dict[str, Any]) -> Policy:
    reason = str(doc.get("reason") or DEFAULT_REASON)
    locks: dict[str, tuple[Any, str]] = {}
    warnings: list[str] = []
    for key, value in doc.get("settings", {}).items():
        try:
            locks[key] = (declaration(key).validate(value), reason)
        except SettingsError as exc:
            warnings.append(f"Machine policy entry ignored: {exc.user_message}")
    for w in warnings:
        log.warning("%s", w)
    log.info("machine policy %s locks %d settings", path, len(locks))
    return Policy(path, locks, tuple(warnings))
