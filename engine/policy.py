"""Machine policy: settings an administrator fixes for everyone on the machine.

Where it is read is fixed by platform:
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

``HEARTH_POLICY`` names one more policy file, for the test suite and for administrators trying
a policy out. It is ignored (and `hearth doctor` says so) unless the process runs as root or an
elevated administrator, or is the test suite in a source checkout; and even then it only adds
locks: the machine's own policy is still read and wins every key it sets. The test suite is
recognised by pytest's own markers, which anyone could set: that is why the variable can never
weaken a policy. An unprivileged user therefore cannot escape one with it (they could, before).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
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
LINUX_PATH = Path("/etc/hearth/policy.json")


@dataclass(frozen=True)
class Policy:
    path: Path | None
    locks: dict[str, tuple[Any, str]] = field(default_factory=dict)  # key -> (value, reason)
    warnings: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()  # where the locks came from, for `hearth doctor`


def machine_path() -> Path | None:
    """The policy file of this platform; None on Windows, whose policy is in the registry."""
    if sys.platform.startswith("linux"):
        return LINUX_PATH
    if sys.platform == "darwin":
        return MAC_MANAGED
    return None


def in_force(environ: Mapping[str, str] | None = None, registry: Any = None) -> Policy:
    """The policy this process obeys: the machine's, plus HEARTH_POLICY's where allowed."""
    env = os.environ if environ is None else environ
    machine = load(registry=registry)
    extra = env.get(POLICY_ENV, "").strip()
    if not extra:
        return machine
    refusal = override_refusal(env)
    if refusal:
        log.warning("%s", refusal)
        return replace(machine, warnings=(*machine.warnings, refusal))
    return combine(machine, load(Path(extra)))


def override_refusal(
    environ: Mapping[str, str] | None = None, admin: bool | None = None
) -> str | None:
    """Why HEARTH_POLICY is ignored in this process, or None when it is honoured."""
    env = os.environ if environ is None else environ
    if admin if admin is not None else _is_admin():
        return None
    in_tests = "PYTEST_CURRENT_TEST" in env or "pytest" in sys.modules
    if in_tests and not getattr(sys, "frozen", False):
        return None
    return (
        f"{POLICY_ENV} is ignored: it is honoured only for an administrator or the test "
        "suite, and never instead of the machine policy."
    )


def combine(machine: Policy, extra: Policy) -> Policy:
    """The machine's locks win; the extra policy can only lock what the machine left open."""
    return Policy(
        machine.path if machine.sources else extra.path,
        {**extra.locks, **machine.locks},
        (*machine.warnings, *extra.warnings),
        (*machine.sources, *(f"{s} ({POLICY_ENV})" for s in extra.sources)),
    )


def _is_admin() -> bool:
    if sys.platform == "win32":
        import ctypes

        try:
            return bool(ctypes.windll.shell32.IsUserAnAdmin())  # type: ignore[attr-defined]
        except (AttributeError, OSError):
            return False
    return os.geteuid() == 0


def load(path: Path | None = None, registry: Any = None) -> Policy:
    """Read one policy (`path`, else this platform's place); none found means no policy.
    `registry` is the `winreg` module (or a stand-in) to read the Windows policy key from; by
    default, winreg on Windows."""
    if path is None and registry is None and sys.platform == "win32":
        import winreg as registry  # type: ignore[import-not-found,no-redef,unused-ignore]
    if registry is not None and path is None:
        where = Path(f"HKLM\\{REGISTRY_KEY}")
        try:
            doc = _from_registry(registry)
        except ValueError as exc:
            return _fail_closed(where, exc)
        return Policy(None) if doc is None else _parse(where, doc)
    path = machine_path() if path is None else path
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
    return Policy(where, {k: (v, why) for k, v in FAIL_CLOSED.items()}, (why,), (str(where),))


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
    return Policy(path, locks, tuple(warnings), (str(path),))
