"""Encryption at rest for the chat history: SQLCipher (`sqlcipher3`) with a random 256-bit key
kept in the operating system's keyring (`keyring`: Keychain, Windows Credential Locker, Secret
Service). Off by default (setting ``privacy.encrypt_chats``).

It fails closed: with the setting on and no trustworthy keyring, the chat store does not open,
rather than write chats in clear. A plaintext file "keyring" (keyrings.alt) counts as none
unless the user chose it on purpose with ``PYTHON_KEYRING_BACKEND``.

`convert()` moves an existing chat file between clear and encrypted when the setting changes
(at the next start), through a temporary file and an atomic rename; migration backups written
in clear are deleted when the history is encrypted.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any

from engine.errors import HearthError
from engine.paths import DataPaths

log = logging.getLogger(__name__)

SERVICE = "Hearth"
_SQLITE_MAGIC = b"SQLite format 3\x00"
# Backends that keep nothing safe: they fail, drop secrets, or write them in a clear file.
_UNSAFE = (
    "keyring.backends.fail",
    "keyring.backends.null",
    "keyrings.alt.file.Plaintext",
    "keyring.backends.chainer",
)


class EncryptionUnavailable(HearthError):
    """Chat encryption is on, but there is no keyring or no SQLCipher to honour it."""


def _account(paths: DataPaths) -> str:
    return f"chat-history-key:{paths.data}"


def keyring_backend() -> Any:
    """The keyring to keep secrets in; EncryptionUnavailable when there is no trustworthy one
    (none, a failing one, or a clear file nobody chose with PYTHON_KEYRING_BACKEND)."""
    try:
        import keyring
        from keyring.backends.chainer import ChainerBackend
    except ImportError:
        raise EncryptionUnavailable(
            "Chat encryption needs the keyring package, which is not installed."
        ) from None
    backend = keyring.get_keyring()
    chosen = bool(os.environ.get("PYTHON_KEYRING_BACKEND"))
    if isinstance(backend, ChainerBackend):
        usable = [b for b in backend.backends if not _unsafe(b, chosen)]
        backend = usable[0] if usable else backend
    if _unsafe(backend, chosen):
        raise EncryptionUnavailable(
            "Chat encryption is on, but this computer has no keyring to keep its key in, so "
            "Hearth will not open the chat history rather than store it unprotected. Start a "
            "keyring service (for example GNOME Keyring or KWallet) or turn chat encryption "
            "off.",
            f"keyring backend {type(backend).__module__}.{type(backend).__name__}",
        )
    return backend


def _unsafe(backend: Any, chosen: bool) -> bool:
    name = f"{type(backend).__module__}.{type(backend).__name__}"
    if chosen and not name.startswith(_UNSAFE[:2]):
        return False  # the user named this backend on purpose
    return name.startswith(_UNSAFE) or getattr(backend, "priority", 0) <= 0


def check_available() -> None:
    """Raise EncryptionUnavailable unless both SQLCipher and a keyring are usable."""
    sqlcipher()
    keyring_backend()


def sqlcipher() -> Any:
    try:
        from sqlcipher3 import dbapi2
    except ImportError:
        raise EncryptionUnavailable(
            "Chat encryption needs SQLCipher (the sqlcipher3 package), which is not installed."
        ) from None
    return dbapi2


def key(paths: DataPaths, create: bool) -> str | None:
    """The chat key as 64 hex digits, from the keyring; made and stored when `create`."""
    backend = keyring_backend()
    try:
        found = backend.get_password(SERVICE, _account(paths))
        if found is None and create:
            found = secrets.token_hex(32)
            backend.set_password(SERVICE, _account(paths), found)
            if backend.get_password(SERVICE, _account(paths)) != found:
                raise EncryptionUnavailable("The keyring did not keep the chat key.")
    except EncryptionUnavailable:
        raise
    except Exception as exc:  # keyring backends raise their own kinds (locked, denied, D-Bus)
        raise EncryptionUnavailable(f"The keyring refused access to the chat key: {exc}") from None
    return str(found) if found is not None else None


def forget_key(paths: DataPaths) -> None:
    """Remove the chat key from the keyring, if one is there (for "delete all my data")."""
    try:
        backend = keyring_backend()
        if backend.get_password(SERVICE, _account(paths)) is not None:
            backend.delete_password(SERVICE, _account(paths))
    except EncryptionUnavailable:
        pass
    except Exception as exc:
        log.warning("could not remove the chat key from the keyring: %s", exc)


def is_encrypted(path: Path) -> bool:
    """True for a file that exists and is not a clear SQLite database."""
    try:
        with path.open("rb") as fh:
            head = fh.read(16)
    except FileNotFoundError:
        return False
    return len(head) == 16 and head != _SQLITE_MAGIC


def apply_key(db: Any, hex_key: str) -> None:
    """Key an SQLCipher connection; EncryptionUnavailable when the key does not open it."""
    _check_form(hex_key)
    db.execute("PRAGMA cipher_log_level = NONE")  # a wrong key is our error to report
    db.execute(f"PRAGMA key = \"x'{hex_key}'\"")
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()  # a wrong key fails here
    except sqlcipher().DatabaseError:
        raise EncryptionUnavailable(
            "The chat history could not be opened with the key in the "
            "keyring (it was encrypted with another key)."
        ) from None


def _check_form(hex_key: str) -> None:
    if len(hex_key) != 64 or not all(c in "0123456789abcdef" for c in hex_key):
        raise EncryptionUnavailable("The chat key in the keyring is not a Hearth key.")


def convert(path: Path, hex_key: str, encrypt: bool) -> None:
    """Rewrite the database at `path` encrypted with `hex_key` (or decrypted), atomically."""
    dbapi = sqlcipher()
    tmp = path.with_name(path.name + ".converting")
    tmp.unlink(missing_ok=True)
    source = dbapi.connect(str(path), isolation_level=None)
    try:
        if not encrypt:
            apply_key(source, hex_key)
        source.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        _check_form(hex_key)  # it goes into SQL text below
        target_key = f"x'{hex_key}'" if encrypt else ""
        source.execute(f'ATTACH DATABASE ? AS converted KEY "{target_key}"', (str(tmp),))
        source.execute("SELECT sqlcipher_export('converted')")
        source.execute("DETACH DATABASE converted")
    finally:
        source.close()
    with tmp.open("rb+") as fh:
        os.fsync(fh.fileno())
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    os.replace(tmp, path)
    if encrypt:
        for backup in path.parent.glob(f"{path.name}.before-*"):
            backup.unlink()  # migration backups in clear would undo the point
    log.info("chat history %s", "encrypted" if encrypt else "decrypted")
