"""Delete all my data leaves nothing of Hearth's behind and nothing of the user's touched."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import keyring.core
import pytest

from engine import erase, models, vault
from engine import paths as paths_module
from engine.chats import open_store
from engine.documents.library import DocumentLibrary
from engine.errors import HearthError, NetworkBlocked
from engine.settings import Settings
from tests.doc_files import make_pdf


def test_everything_goes_and_the_users_own_files_stay(
    hearth_home: Path, tmp_path: Path, bundled_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    keyring.core.init_backend()
    paths = paths_module.resolve().ensure()
    settings = Settings.load(paths.settings_file)
    settings.set("sampling.temperature", 0.2)
    settings.save()
    chats = open_store(paths.data / "chats.sqlite", paths, encrypt=True)  # key in the keyring
    chats.add_message(chats.create().id, "user", "private question")
    chats.close()
    docs = tmp_path / "my documents"
    docs.mkdir()
    make_pdf(docs / "contract.pdf", ["The tenant pays rent monthly."])
    library = DocumentLibrary(paths.data / "documents", settings)
    library.create("contracts", [str(docs)])
    assert list(library.sync("contracts"))[-1].indexed == 1
    mine = tmp_path / "my models" / "mine.gguf"
    mine.parent.mkdir()
    shutil.copyfile(bundled_gguf, mine)
    list(models.import_model(mine, paths, copy=True))  # a copy in Hearth's models folder
    list(models.import_model(mine, paths, copy=False))  # and used in place
    with pytest.raises(NetworkBlocked):
        socket.gethostbyname("example.org")  # one line in the egress log
    (paths.cache / "thumbnails").mkdir()
    (paths.cache / "thumbnails" / "a.png").write_bytes(b"x")
    unrelated = hearth_home.parent / "not-hearth.txt"
    unrelated.write_text("keep me")

    areas = {a.name: a for a in erase.inventory(paths)}
    assert areas["downloaded and copied models"].size >= bundled_gguf.stat().st_size
    assert all(a.files for a in areas.values()), areas

    erase.erase_all(paths)
    assert erase.leftovers(paths) == [] and not hearth_home.exists()
    assert vault.key(paths, create=False) is None
    assert mine.exists() and docs.joinpath("contract.pdf").exists()
    assert unrelated.read_text() == "keep me"
    keyring.core.init_backend()


def test_a_home_that_is_not_hearths_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    for home in ("/", str(Path.home())):
        monkeypatch.setenv("HEARTH_HOME", home)
        with pytest.raises(HearthError, match="does not look like a Hearth folder"):
            erase.erase_all(paths_module.resolve())
    assert Path.home().exists()


def test_the_platform_folders_go_with_their_app_named_parents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without HEARTH_HOME, Linux keeps logs in ~/.local/state/Hearth/log: erasing must not
    # leave an empty ~/.local/state/Hearth behind (it did), nor touch its neighbours.
    monkeypatch.delenv("HEARTH_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    keyring.core.init_backend()
    paths = paths_module.resolve().ensure()
    (paths.logs / "hearth.log").write_text("a line")
    neighbour = tmp_path / ".local" / "state" / "other-app"
    neighbour.mkdir(parents=True)
    erase.erase_all(paths)
    assert not (tmp_path / ".local" / "state" / "Hearth").exists()
    assert not any(p.name == "Hearth" for p in tmp_path.rglob("*")), list(tmp_path.rglob("*"))
    assert neighbour.is_dir()
    keyring.core.init_backend()
