"""Where Hearth keeps its data.

Platform folders by default (platformdirs). Setting ``HEARTH_HOME`` moves everything under one
folder: tests point it at a temporary directory, portable installs at a USB stick. Nothing is
created here at import time; `ensure()` creates folders when a caller is about to write.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

APP_NAME = "Hearth"
HOME_ENV = "HEARTH_HOME"


@dataclass(frozen=True)
class DataPaths:
    """The folders Hearth uses; one instance per process is built by app/ and passed in."""

    config: Path
    data: Path
    cache: Path
    logs: Path

    @property
    def models(self) -> Path:
        """Models the user downloaded or imported (copied)."""
        return self.data / "models"

    @property
    def settings_file(self) -> Path:
        return self.config / "settings.json"

    def ensure(self) -> DataPaths:
        """Create the folders (private to the user) and return self."""
        for folder in (self.config, self.data, self.cache, self.logs, self.models):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self

    def as_dict(self) -> dict[str, str]:
        return {
            "config": str(self.config),
            "data": str(self.data),
            "cache": str(self.cache),
            "logs": str(self.logs),
            "models": str(self.models),
        }


def resolve(environ: dict[str, str] | None = None) -> DataPaths:
    """Return the data folders for this user, honouring ``HEARTH_HOME``."""
    env = os.environ if environ is None else environ
    home = env.get(HOME_ENV, "").strip()
    if home:
        root = Path(home).expanduser().resolve()
        return DataPaths(
            config=root / "config",
            data=root / "data",
            cache=root / "cache",
            logs=root / "logs",
        )
    import platformdirs

    dirs = platformdirs.PlatformDirs(APP_NAME, appauthor=False)
    return DataPaths(
        config=Path(dirs.user_config_dir),
        data=Path(dirs.user_data_dir),
        cache=Path(dirs.user_cache_dir),
        logs=Path(dirs.user_log_dir),
    )
