"""How each model is best run, and how that meets the user's own settings.

A small model run at the app's generic settings can answer nonsense: the bundled SmolLM2 at
temperature 0.7 began "What is the capital of France?" in French gibberish in about a third of
answers. So every answer starts from what the model's makers recommend, in this order (the
weakest first; each later one wins where it says something):

1. the app's defaults (`engine.settings`);
2. the model's recommendation: its catalog entry's `defaults`, else the sampling keys
   llama.cpp's converter writes into GGUF files (`general.sampling.*`);
3. what the user chose in Settings (a value they set, not one left at its default) or what
   the machine policy fixed;
4. the chat's own settings, a request's fields, the CLI's flags (applied by their callers).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine import gguf
from engine.errors import HearthError
from engine.models import bundled, catalog, registry
from engine.paths import DataPaths
from engine.runtime.params import SamplingParams, sampling_from_settings
from engine.settings import Settings

log = logging.getLogger(__name__)

# SamplingParams field -> its setting, for the fields a model may recommend.
SETTING_OF = {
    "temperature": "sampling.temperature",
    "top_p": "sampling.top_p",
    "top_k": "sampling.top_k",
    "min_p": "sampling.min_p",
    "repeat_penalty": "sampling.repeat_penalty",
}
# The keys llama.cpp's GGUF writer uses (gguf-py: Keys.General.SAMPLING_*).
GGUF_KEYS = {
    "temperature": "general.sampling.temp",
    "top_p": "general.sampling.top_p",
    "top_k": "general.sampling.top_k",
    "min_p": "general.sampling.min_p",
    "repeat_penalty": "general.sampling.penalty_repeat",
}


@dataclass(frozen=True)
class Recommendation:
    """What a model's makers recommend; empty when nothing is known."""

    source: str = ""  # "the catalog", "the model file" or "" (none)
    sampling: dict[str, Any] = field(default_factory=dict)  # SamplingParams fields
    system_prompt: str | None = None


def recommendation(model: str, paths: DataPaths) -> Recommendation:
    """For an installed model id, a catalog id or a GGUF path. Never raises for a model it
    cannot read: an unknown or broken model simply has no recommendation."""
    try:
        entry = _catalog_entry(model, paths)
    except HearthError as exc:  # a damaged catalog: the model file may still say
        log.warning("catalog unreadable for %s: %s", model, exc)
        entry = None
    if entry is not None:
        sampling = {k: v for k, v in entry.defaults.items() if k in SETTING_OF}
        prompt = entry.defaults.get("system_prompt")
        return Recommendation("the catalog", sampling, prompt if isinstance(prompt, str) else None)
    try:
        info = gguf.inspect(registry.resolve(model, paths))
    except (HearthError, OSError) as exc:
        log.info("no recommendation for %s: %s", model, exc)
        return Recommendation()
    sampling = {}
    for name, key in GGUF_KEYS.items():
        value = info.metadata.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            sampling[name] = int(value) if name == "top_k" else float(value)
    return Recommendation("the model file" if sampling else "", sampling)


def answer_defaults(
    model: str, settings: Settings, paths: DataPaths
) -> tuple[SamplingParams, str, Recommendation]:
    """Sampling and system prompt for answers from `model` before a chat's or a request's
    own values: the app's defaults, the model's recommendation over them, the user's chosen
    settings over that. Also returns the recommendation, for showing it."""
    rec = recommendation(model, paths)
    sampling = sampling_from_settings(settings)
    recommended = {k: v for k, v in rec.sampling.items() if not settings.explicit(SETTING_OF[k])}
    sampling = replace(sampling, **recommended)
    system = str(settings.get("chat.system_prompt"))
    if rec.system_prompt is not None and not settings.explicit("chat.system_prompt"):
        system = rec.system_prompt
    return sampling, system, rec


def _catalog_entry(model: str, paths: DataPaths) -> catalog.CatalogModel | None:
    known = catalog.load()
    entry = known.find(model)
    if entry is not None:
        return entry
    if bundled.by_id(model) is not None:
        return next((m for m in known.models if m.bundled_as == model), None)
    entries = registry.Registry(paths).entries()
    record = entries.get(model)
    if record is None and Path(model).suffix.lower() == ".gguf":
        # A path (the API and the runtime name models by file): whose file is it?
        file = Path(model).expanduser().resolve()
        if _same_file(file, bundled.CHAT):
            return next((m for m in known.models if m.bundled_as == bundled.CHAT.id), None)
        record = next((r for r in entries.values() if Path(r["path"]).resolve() == file), None)
    if record is None:
        return None
    if record.get("catalog_id"):
        return known.find(str(record["catalog_id"]))
    sha = record.get("sha256")  # a file from elsewhere may still be a catalog model's
    return known.by_sha256(str(sha)) if sha else None


def _same_file(file: Path, spec: bundled.BundledModel) -> bool:
    try:
        return spec.path().resolve() == file
    except HearthError:  # the bundled model is not installed
        return False
