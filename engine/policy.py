"""Machine policy: settings an administrator fixes for everyone on the machine.

A read-only JSON file, `/etc/hearth/policy.json` on Linux (``HEARTH_POLICY`` points elsewhere,
for tests and for other platforms until their native stores are read):

    {"reason": "Set by Example Corp IT (ticket 1234)",
     "settings": {"privacy.offline_mode": true, "downloads.allowed": false}}

Each key it sets is locked: it keeps the policy's value and the UI shows it locked, with the
reason. A policy file that exists but cannot be read fails closed: offline, no downloads.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import SettingsError
from engine.settings import declaration

log = logging.getLogger(__name__)

POLICY_ENV = "HEARTH_POLICY"
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
    return None


def load(path: Path | None = None) -> Policy:
    """Read the policy; a missing file means no policy."""
    path = default_path() if path is None else path
    if path is None or not path.exists():
        return Policy(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or not isinstance(doc.get("settings", {}), dict):
            raise ValueError("expected an object with a \"settings\" object")
    except (OSError, ValueError) as exc:
        why = f"The machine policy {path} could not be read ({exc}), so Hearth stays offline."
        log.error("%s", why)
        return Policy(path, {k: (v, why) for k, v in FAIL_CLOSED.items()}, (why,))
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
