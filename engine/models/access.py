"""Where the machine policy decides which model files run here.

The policy may list the SHA-256 checksums of the models this computer may load
(`models.allowed_sha256`; empty allows any). Every way in goes through this module:

- `load_params()` is the one way from "the model the user named" (the window's chats, the CLI,
  the API) to the parameters that load it: resolve the name, check the file's bytes against the
  list, then build LoadParams from the settings.
- `gate()` is what `ModelRuntime` calls at the moment it loads, so parameters built by hand
  cannot load an unlisted file either.
- `refuse_unlisted()` is the same rule for a checksum known before the file is here (packs
  check it before installing anything).

The file itself is hashed, never its name or our records of it; the digest is cached against
the file's size, times and inode, so a changed or replaced file is hashed again.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine import files
from engine.errors import ModelNotAllowed, ModelNotFound
from engine.models import registry
from engine.paths import DataPaths
from engine.runtime.params import LoadParams
from engine.settings import Settings


def allowed_digests(settings: Settings) -> frozenset[str]:
    """The checksums the policy allows, normalised; empty: any model may run."""
    return frozenset(h.strip().lower() for h in settings.get("models.allowed_sha256") if h.strip())


def refuse_unlisted(sha256: str, settings: Settings, name: str, where: str = "") -> None:
    """Raise ModelNotAllowed unless `sha256` is on the policy's list (or there is no list)."""
    allowed = allowed_digests(settings)
    if allowed and sha256.strip().lower() not in allowed:
        why = settings.locked.get("models.allowed_sha256")
        raise ModelNotAllowed(
            f"This computer's policy does not allow the model “{name}”{where} (its SHA-256 "
            f"checksum is not on the allowed list{f'; {why}' if why else ''}). "
            "Ask your IT department.",
            sha256,
        )


def check_file(path: Path, settings: Settings, paths: DataPaths) -> None:
    """Raise ModelNotAllowed unless the bytes of the file at `path` are allowed."""
    if not allowed_digests(settings):
        return
    try:
        digest = _sha256_cached(path, paths)
    except OSError as exc:
        raise ModelNotFound(f"The model file “{path}” cannot be read.", str(exc)) from None
    refuse_unlisted(digest, settings, path.name)


def gate(settings: Settings, paths: DataPaths) -> Callable[[str], None]:
    """The check `ModelRuntime(admit=...)` runs on every model file it is asked to load."""
    return lambda model_path: check_file(Path(model_path), settings, paths)


def load_params(
    model: str,
    settings: Settings,
    paths: DataPaths,
    *,
    accept_paths: bool = False,
    **overrides: Any,
) -> LoadParams:
    """LoadParams for the installed model `model` (bundled, registered, or a file stem in
    the models folder), or for a GGUF path where `accept_paths` (the CLI's --model; never
    the API's clients), or for a model on a configured server (remote:host:port/model: the
    settings and policy on servers apply, not the file allow-list, there being no file).
    Raises ModelNotFound, ModelNotAllowed or ServerNotAllowed by the policy. Overrides
    (context_length, threads, gpu_layers, batch_size) replace the settings where not None."""
    if model.startswith("remote:"):  # a model on a configured server (engine.remote)
        from engine import remote

        params = remote.load_params(settings, paths, model)
        return replace(params, **{k: v for k, v in overrides.items() if v is not None})
    path = registry.resolve(model, paths) if accept_paths else registry.locate(model, paths)
    if path is None:
        raise registry.not_installed(model)
    check_file(path, settings, paths)
    params = LoadParams(
        model_path=str(path),
        context_length=settings.get("inference.context_length"),
        threads=settings.get("inference.threads"),
        gpu_layers=settings.get("inference.gpu_layers"),
        batch_size=settings.get("inference.batch_size"),
        kv_cache_type=settings.get("inference.kv_cache_type"),
        flash_attention=settings.get("inference.flash_attention"),
        lookup_draft=8 if settings.get("inference.lookup_decoding") else 0,
    )
    return replace(params, **{k: v for k, v in overrides.items() if v is not None})


def _sha256_cached(path: Path, paths: DataPaths) -> str:
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}|{st.st_ino}"
    cache_file = paths.cache / "model-sha256.json"
    try:
        cache = json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cache = {}
    if isinstance(cache, dict) and isinstance(cache.get(key), str):
        return str(cache[key])
    digest = files.sha256_file(path)
    cache = {k: v for k, v in _items(cache) if not k.startswith(f"{path.resolve()}|")}
    cache[key] = digest
    with contextlib.suppress(OSError):  # not cached: hashed again next time
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        files.write_atomic(cache_file, json.dumps(cache))
    return digest


def _items(cache: Any) -> Iterable[tuple[str, Any]]:
    return cache.items() if isinstance(cache, dict) else ()
