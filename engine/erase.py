"""Delete all my data: chats, document indexes, downloaded and copied models, caches, logs,
settings and the chat encryption key, everything Hearth wrote for this user.

Not touched: model files imported in place or found in other apps' folders (they belong to the
user or to those apps), the bundled models (part of the installation) and the machine policy.
The caller stops everything that holds these files open (model worker, documents worker, chat
store) first.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from engine import paths as paths_module
from engine.errors import HearthError
from engine.paths import DataPaths

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Area:
    name: str  # what it is, for the confirmation
    folder: Path
    files: int
    size: int


def inventory(paths: DataPaths) -> list[Area]:
    """What `erase_all` would remove, folder by folder (for the confirmation)."""
    areas = []
    folders = _folders(paths)
    others = {str(f) for _n, f in folders}
    for name, folder in folders:
        files = size = 0
        for root, dirs, names in os.walk(folder):
            dirs[:] = [d for d in dirs if os.path.join(root, d) not in others]  # counted apart
            for n in names:
                files += 1
                with contextlib.suppress(OSError):
                    size += os.lstat(os.path.join(root, n)).st_size
        areas.append(Area(name, folder, files, size))
    return areas


def erase_all(paths: DataPaths) -> list[Area]:
    """Remove every folder Hearth keeps for this user; return what was there. Raises
    HearthError naming what could not be removed (nothing is left half-explained)."""
    before = inventory(paths)
    _forget_encryption_key(paths)
    problems = []
    for _name, folder in _folders(paths):
        _check_ours(folder, paths)
        if folder.is_symlink():
            folder.unlink()
        elif folder.exists():
            shutil.rmtree(folder, onerror=lambda _f, p, e: problems.append(f"{p}: {e[1]}"))
    for parent in _app_parents(paths):
        with contextlib.suppress(OSError):  # not empty: something else lives there; keep it
            parent.rmdir()
    left = leftovers(paths)
    if problems or left:
        raise HearthError(
            "Some of Hearth's data could not be deleted: "
            + "; ".join((problems + [str(p) for p in left])[:5])
        )
    log.info("all data deleted (%d files)", sum(a.files for a in before))
    return before


def leftovers(paths: DataPaths) -> list[Path]:
    """Files still in Hearth's folders (empty after `erase_all`)."""
    return [
        p
        for _n, folder in _folders(paths)
        if folder.exists()
        for p in [folder, *folder.rglob("*")]
        if not p.is_dir() or p == folder
    ]


def _folders(paths: DataPaths) -> list[tuple[str, Path]]:
    # Models live under data; listed apart so the confirmation can say how large they are.
    return [
        ("downloaded and copied models", paths.models),
        ("chats, document indexes and other data", paths.data),
        ("settings", paths.config),
        ("caches", paths.cache),
        ("logs, including the network log", paths.logs),
    ]


def _app_parents(paths: DataPaths) -> list[Path]:
    """Folders that exist only to hold ours: HEARTH_HOME itself, and on Linux the
    `~/.local/state/Hearth` that holds `log` (platformdirs puts the logs one level down)."""
    root = _home_root()
    if root is not None:
        return [root / "data", root]
    return [
        f.parent
        for _n, f in _folders(paths)
        if f.parent.name.lower() == paths_module.APP_NAME.lower()
    ]


def _home_root() -> Path | None:
    home = os.environ.get(paths_module.HOME_ENV, "").strip()
    return Path(home).expanduser().resolve() if home else None


def _check_ours(folder: Path, paths: DataPaths) -> None:
    """Refuse anything but a Hearth folder: a mistaken HEARTH_HOME=/ must not empty a disk."""
    root = _home_root()
    resolved = folder.resolve() if folder.exists() else folder
    if root is not None:  # HEARTH_HOME: only our four folders in it, and never in / or ~
        ours = (
            root not in (Path.home(), Path(root.anchor))
            and resolved.parent in (root, root / "data")
            and resolved.name in ("config", "data", "cache", "logs", "models")
        )
    else:  # the platform folders all carry the app's name
        ours = paths_module.APP_NAME.lower() in str(resolved).lower()
    if not ours or resolved in (Path.home(), Path(resolved.anchor)):
        raise HearthError(f"Refused to delete {folder}: it does not look like a Hearth folder.")


def _forget_encryption_key(paths: DataPaths) -> None:
    from engine import vault

    vault.forget_key(paths)
