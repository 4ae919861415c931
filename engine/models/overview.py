"""Everything there is to know about models on this machine, in one call: what is installed,
what other apps downloaded, paused downloads, and the catalog with how each entry would run
here. The Models page, `hearth models list` and `hearth models search` all show this.

It reads files and probes the hardware: call it off the GUI thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine import hardware
from engine.hardware import Hardware
from engine.models import catalog, discovery, downloads, fit, registry
from engine.models.catalog import CatalogModel
from engine.models.discovery import Found
from engine.models.fit import FitEstimate
from engine.models.registry import InstalledModel
from engine.paths import DataPaths
from engine.settings import Settings


@dataclass(frozen=True)
class CatalogRow:
    model: CatalogModel
    fit: FitEstimate
    installed: bool  # a usable installed model came from this entry
    paused: bool  # a download of it stopped part-way and can be resumed
    kept_bytes: int = 0  # what that download already has
    refusal: str | None = None  # why this computer will not download it (offline, policy)

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.model.as_dict(),
            "installed": self.installed,
            "paused": self.paused,
            "kept_bytes": self.kept_bytes,
            "refusal": self.refusal,
            "fit": self.fit.as_dict(),
        }


@dataclass(frozen=True)
class Overview:
    installed: list[InstalledModel]
    found: list[Found]  # GGUFs of other apps that are not installed here already
    paused: list[dict[str, Any]]  # partial downloads (downloads.partial_downloads)
    catalog: list[CatalogRow]
    hardware: Hardware | None  # None when the catalog was not asked for
    # A GPU the installed llama.cpp cannot use, and the command that fixes it (hardware.advice)
    gpu_advice: str | None = None
    # The processor as llama.cpp meets it, in one line (`processor_line`)
    processor: str | None = None


def overview(
    settings: Settings,
    paths: DataPaths,
    *,
    search: str | None = "",
    discover: bool = True,
    extra_folders: Sequence[str] = (),
) -> Overview:
    """Installed models and paused downloads always; other apps' models when `discover`
    (the known places, models.search_folders and `extra_folders`); catalog entries matching
    `search` ("" for all, None for none) with a fit estimate at the configured context."""
    installed = registry.installed(paths)
    paused = downloads.partial_downloads(paths)
    found: list[Found] = []
    if discover:
        folders = [*settings.get("models.search_folders"), *extra_folders]
        known = {m.path.resolve() for m in installed}
        found = [
            f for f in discovery.discover(folders, exclude=paths.models) if f.real_path not in known
        ]
    rows: list[CatalogRow] = []
    hw = None
    if search is not None:
        hw = hardware.detect()
        context = int(settings.get("inference.context_length"))
        usable = {m.catalog_id for m in installed if m.catalog_id and m.problem is None}
        config = downloads.DownloadConfig.from_settings(settings)
        for entry in catalog.load().search(search):
            estimate = fit.for_model(entry.id, paths, context, hw=hw).estimate
            kept = max(
                (
                    int(p.get("have") or 0)
                    for p in paused
                    if p.get("repo") == entry.repo and p.get("file") == entry.file
                ),
                default=0,
            )
            # A download that failed before its first byte left a record, not a download to
            # resume: it is not "paused".
            why_not = downloads.refusal(downloads.DownloadRequest.for_model(entry), config)
            rows.append(CatalogRow(entry, estimate, entry.id in usable, kept > 0, kept, why_not))
    return Overview(
        installed,
        found,
        paused,
        rows,
        hw,
        hardware.advice(hw) if hw is not None else None,
        processor_line(hw) if hw is not None else None,
    )


def processor_line(hw: hardware.Hardware) -> str:
    """What llama.cpp makes of this processor, in two sentences for the Models page:
    "This computer: AMD EPYC (SSSE3, AVX, AVX2, FMA, F16C). llama.cpp is built for this
    processor, no AMX here, the bundled model runs on plain kernels; self-test passed."
    (`hearth doctor` says the same at length.)"""
    from engine import llama_build

    k = llama_build.kernels_report(hw.cpu_features)
    features = ", ".join(f.upper() for f in k["features"]) or "no vector features named"
    variant = k["variant_in_use"]
    built = (
        f"llama.cpp runs its {variant} kernels"
        if variant
        else "llama.cpp is built for this processor"
    )
    amx = {
        "none": "no AMX here",
        "patched": "AMX on (patched for llama.cpp issue #20824)",
        "off": "AMX off (built without it)",
        "stock": "AMX as llama.cpp ships it",
    }[k["amx_state"]]
    kernels = {
        "amx": "the bundled model runs on AMX tiles",
        "repacked": "the bundled model runs on weights repacked for this processor",
        "plain": "the bundled model runs on plain kernels",
        "unknown": "kernels not yet seen",
    }[k["kernels_state"]]
    test = k["selftest"]
    if test is None:
        verdict = "no self-test recorded for this build"
    elif not test.get("current"):
        verdict = "the self-test on record is another build's"
    else:
        verdict = "self-test passed" if test.get("passed") else "self-test FAILED"
    return f"This computer: {hw.cpu_model} ({features}). {built}, {amx}, {kernels}; {verdict}."


# On a CPU, a larger model answers too slowly to chat with (2 cores: ~3 tokens/s at 7B, Q4).
CPU_CHAT_LIMIT = 4_000_000_000


def suggest_download(ov: Overview) -> CatalogRow | None:
    """The catalog model to offer a new user: a chat model this computer may download and
    runs, not installed yet; on a GPU the largest that fits there, else the largest up to
    4B parameters (a CPU's pace), the smaller file first. None when nothing qualifies."""
    usable = [
        r
        for r in ov.catalog
        if "chat" in r.model.tags
        and not r.installed
        and r.refusal is None
        and r.fit.verdict in ("gpu", "partial", "cpu")
    ]
    on_gpu = [r for r in usable if r.fit.verdict == "gpu"]
    pool = on_gpu or [r for r in usable if r.model.parameters <= CPU_CHAT_LIMIT]
    if not pool:
        return None
    return max(pool, key=lambda r: (r.model.parameters, -r.model.size_bytes))
