"""Model runtimes built as app/compose.py builds the app's: every load passes the machine
policy's allow-list (`engine.models.gate`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine import models
from engine import paths as paths_module
from engine.runtime import ModelRuntime
from engine.settings import Settings


def new_runtime(
    home: Path | None = None, settings: Settings | None = None, **kwargs: Any
) -> ModelRuntime:
    """A runtime held to the policy in `settings` (default: none, so any model loads), with
    its checksum cache in the data folders under `home` (default: the test's HEARTH_HOME;
    module-scoped fixtures run before it is set and must pass one)."""
    env = {paths_module.HOME_ENV: str(home)} if home is not None else None
    data = paths_module.resolve(env)
    return ModelRuntime(admit=models.gate(settings or Settings.load(None), data), **kwargs)


def bundled_system_prompt() -> str:
    """The system prompt the catalog recommends for the bundled model, which the app uses:
    with the generic "You are a helpful assistant." this 135M model's greedy answer to the
    capital of France starts in French on some CPUs ("La" 0.18 against "The" 0.16)."""
    entry = next(m for m in models.load_catalog().models if m.bundled_as == models.BUNDLED_CHAT.id)
    return str(entry.defaults["system_prompt"])
