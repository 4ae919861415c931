"""Chat history encrypted at rest with SQLCipher and a key in the keyring; off by default, and
never silently in clear when it is on (engine/vault.py, engine/chats.open_store).

The keyring used where one is needed is keyrings.alt's file backend, chosen explicitly through
PYTHON_KEYRING_BACKEND as a user would; this machine has no desktop keyring service."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.core
import pytest

from engine import paths as paths_module
from engine import vault
from engine.chats import ChatStore, open_store
from engine.paths import DataPaths

SECRET = "The merger closes on 3 March with Contoso"


def use_backend(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str | None) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    if name is None:
        monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    else:
        monkeypatch.setenv("PYTHON_KEYRING_BACKEND", name)
    keyring.core.init_backend()


@pytest.fixture
def paths(monkeypatch: pytest.MonkeyPatch) -> Iterator[DataPaths]:
    yield paths_module.resolve().ensure()
    monkeypatch.undo()
    keyring.core.init_backend()


def plain_history(path: Path) -> None:
    store = ChatStore(path)
    chat = store.create(title="Deal")
    store.add_message(chat.id, "user", SECRET)
    store.close()


def test_encrypting_converts_the_history_and_decrypting_gives_it_back(
    paths: DataPaths, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    use_backend(monkeypatch, tmp_path, "keyrings.alt.file.PlaintextKeyring")
    path = paths.data / "chats.sqlite"
    plain_history(path)
    path.with_name("chats.sqlite.before-002_x").write_bytes(path.read_bytes())  # a backup
    assert SECRET.encode() in path.read_bytes()

    store = open_store(path, paths, encrypt=True)
    assert store.encrypted and store.messages(1)[0].content == SECRET
    store.add_message(1, "assistant", "Noted: " + SECRET)
    store.close()
    on_disk = b"".join(p.read_bytes() for p in path.parent.glob("chats.sqlite*"))
    assert SECRET.encode() not in on_disk and vault.is_encrypted(path)
    assert not list(path.parent.glob("chats.sqlite.before-*"))  # clear backups are gone
    with pytest.raises(sqlite3.DatabaseError):
        sqlite3.connect(path).execute("SELECT * FROM messages").fetchall()

    store = open_store(path, paths, encrypt=False)
    assert not store.encrypted and len(store.messages(1)) == 2
    store.close()
    assert SECRET.encode() in path.read_bytes()
    assert vault.key(paths, create=False) is None  # the key went with the encryption


@pytest.mark.parametrize(
    "backend", ["keyring.backends.fail.Keyring", "keyring.backends.null.Keyring"]
)
def test_no_keyring_fails_closed_and_leaves_the_history_as_it_was(
    paths: DataPaths, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, backend: str
) -> None:
    use_backend(monkeypatch, tmp_path, backend)
    path = paths.data / "chats.sqlite"
    plain_history(path)
    before = path.read_bytes()
    with pytest.raises(vault.EncryptionUnavailable, match="no keyring"):
        open_store(path, paths, encrypt=True)
    assert path.read_bytes() == before and not (paths.data / "chats.sqlite.converting").exists()
    with pytest.raises(vault.EncryptionUnavailable):
        vault.check_available()


def test_a_plaintext_file_keyring_found_by_itself_counts_as_none(
    paths: DataPaths, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from keyrings.alt.file import PlaintextKeyring

    use_backend(monkeypatch, tmp_path, None)
    keyring.set_keyring(PlaintextKeyring())
    with pytest.raises(vault.EncryptionUnavailable, match="no keyring to keep its key") as caught:
        open_store(paths.data / "chats.sqlite", paths, encrypt=True)
    assert not (paths.data / "chats.sqlite").exists()
    # the class name is for the log (detail), not for the person reading the message
    assert "keyrings" not in caught.value.user_message
    assert "PlaintextKeyring" in (caught.value.detail or "")


def test_an_encrypted_history_without_its_key_is_not_opened(
    paths: DataPaths, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    use_backend(monkeypatch, tmp_path, "keyrings.alt.file.PlaintextKeyring")
    path = paths.data / "chats.sqlite"
    plain_history(path)
    open_store(path, paths, encrypt=True).close()
    vault.forget_key(paths)  # e.g. another machine, or the keyring was reset
    before = path.read_bytes()
    for encrypt in (True, False):
        with pytest.raises(vault.EncryptionUnavailable):
            open_store(path, paths, encrypt=encrypt)
    assert path.read_bytes() == before
