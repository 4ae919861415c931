"""The API's bearer token: random, one per installation, in a file only its user can read.

It is made the first time anything asks for it, shown in settings and by `hearth api token`,
and replaced by `rotate()`, after which the old token no longer opens anything (the server
reads the file on every request, so a rotation needs no restart).
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path

from engine import files
from engine.paths import DataPaths

PREFIX = "hearth-"


def path(paths: DataPaths) -> Path:
    return paths.config / "api-token"


def read_or_create(paths: DataPaths) -> str:
    """The current token, made now if there is none (or the file is unusable)."""
    try:
        token = path(paths).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        token = ""
    return token if _well_formed(token) else rotate(paths)


def rotate(paths: DataPaths) -> str:
    """Replace the token with a new random one (256 bits) and return it."""
    token = PREFIX + secrets.token_urlsafe(32)
    target = path(paths)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    files.write_atomic(target, token + "\n")  # mkstemp makes it 0600; the rename keeps that
    return token


def matches(expected: str, authorization: str | None) -> bool:
    """Whether an `Authorization` header carries `expected` as a bearer token, compared in
    constant time so its length of agreement cannot be timed."""
    if not authorization or not expected:
        return False
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode("utf-8", "replace"), expected.encode("utf-8"))


def _well_formed(token: str) -> bool:
    return token.startswith(PREFIX) and len(token) >= len(PREFIX) + 32 and token.isascii()
