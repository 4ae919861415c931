"""pytest plugin (-p tests.block_qt): make PySide6 unimportable, to prove the engine and
its tests need no Qt."""

from __future__ import annotations

import importlib.abc
import sys
from importlib.machinery import ModuleSpec


class _BlockQt(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: object = None, target: object = None) -> ModuleSpec:
        if name.split(".")[0] in ("PySide6", "shiboken6"):
            raise ModuleNotFoundError(f"{name} is blocked: engine tests must run without Qt")
        return None  # type: ignore[return-value]


sys.meta_path.insert(0, _BlockQt())
