"""Will this model run here, and how: the estimate for a model the user names (installed, in
the catalog, or a GGUF path) on this machine. The arithmetic is engine.memory's; the runtime
uses the same to choose automatic GPU layers at load.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import gguf, hardware
from engine.hardware import Hardware
from engine.memory import (
    BATCH,
    KV_BYTES,
    MIN_CONTEXT,
    RUNTIME_OVERHEAD,
    USABLE_RAM,
    USABLE_VRAM,
    FitEstimate,
    ModelShape,
    estimate,
    gb,
)
from engine.models import catalog, registry
from engine.models.catalog import CatalogModel
from engine.paths import DataPaths

__all__ = [
    "BATCH",
    "KV_BYTES",
    "MIN_CONTEXT",
    "RUNTIME_OVERHEAD",
    "USABLE_RAM",
    "USABLE_VRAM",
    "Fit",
    "FitEstimate",
    "ModelShape",
    "estimate",
    "for_model",
    "gb",
    "shape_from_catalog",
]


def shape_from_catalog(model: CatalogModel) -> ModelShape:
    a = model.architecture
    bits_per_weight = model.size_bytes * 8 / model.parameters
    copies = 1 if a.tied_embeddings else 2
    non_layer = int(a.vocab_size * a.embedding_length * copies * bits_per_weight / 8)
    return ModelShape(
        model.title,
        model.size_bytes,
        min(non_layer, model.size_bytes // 2),
        a.layers,
        a.heads,
        a.kv_heads,
        a.head_dim,
        a.vocab_size,
        model.context_length,
        a.embedding_length,
    )


@dataclass(frozen=True)
class Fit:
    """The estimate for one named model on this machine, and what it was worked out from."""

    model: str  # as named
    shape: ModelShape
    shape_from: str  # "catalog" or "GGUF header"
    path: Path | None  # the file, when the shape came from one
    estimate: FitEstimate
    hardware: Hardware

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "shape_from": self.shape_from,
            **self.estimate.as_dict(),
            "hardware": self.hardware.as_dict(),
        }


def for_model(
    model: str,
    paths: DataPaths,
    context: int,
    *,
    use_gpu: bool = True,
    hw: Hardware | None = None,
    kv_type: str = "f16",
) -> Fit:
    """Will `model` run here: an installed id (sized from its file's header), a catalog id
    (from the catalog, before any download) or a GGUF path. An installed model is looked up
    first: its file is what would run, and it needs no catalog (whose schema check is not
    cheap at start). Raises ModelNotFound, InvalidModelFile."""
    path = registry.locate(model, paths)
    entry = catalog.load().find(model) if path is None else None
    if entry is not None:
        shape, source = shape_from_catalog(entry), "catalog"
    else:
        path = path or registry.resolve(model, paths)
        shape, source = ModelShape.from_gguf(gguf.inspect(path)), "GGUF header"
    hw = hw or hardware.detect()
    return Fit(
        model, shape, source, path, estimate(shape, hw, context, kv_type, use_gpu=use_gpu), hw
    )
