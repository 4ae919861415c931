"""The model a new user is offered: the shipped catalog, estimated for made-up machines."""

from __future__ import annotations

from dataclasses import replace

from engine import models
from engine.models import fit
from engine.models.overview import CPU_CHAT_LIMIT
from tests.engine.test_fit import machine


def rows_for(hw, installed: set[str] = frozenset(), refusal: str | None = None):
    out = []
    for entry in models.load_catalog().models:
        estimate = fit.estimate(fit.shape_from_catalog(entry), hw, 4096)
        out.append(models.CatalogRow(entry, estimate, entry.id in installed, False, 0, refusal))
    return out


def overview(rows) -> models.Overview:
    return models.Overview([], [], [], rows, None)


def test_a_cpu_gets_the_largest_chat_model_it_can_answer_at_a_readable_pace() -> None:
    row = models.suggest_download(overview(rows_for(machine(ram=16))))
    assert row is not None and "chat" in row.model.tags
    assert row.fit.verdict == "cpu" and row.model.parameters <= CPU_CHAT_LIMIT


def test_a_gpu_gets_the_largest_that_fits_on_it() -> None:
    rows = rows_for(machine(ram=32, gpu_free=10))
    row = models.suggest_download(overview(rows))
    assert row is not None and row.fit.verdict == "gpu"
    bigger = [
        r
        for r in rows
        if r.fit.verdict == "gpu"
        and "chat" in r.model.tags
        and r.model.parameters > row.model.parameters
    ]
    assert bigger == []


def test_nothing_is_offered_that_is_installed_refused_or_too_big() -> None:
    hw = machine(ram=16)
    first = models.suggest_download(overview(rows_for(hw)))
    assert first is not None
    again = models.suggest_download(overview(rows_for(hw, installed={first.model.id})))
    assert again is not None and again.model.id != first.model.id
    assert models.suggest_download(overview(rows_for(hw, refusal="offline"))) is None
    assert models.suggest_download(overview(rows_for(machine(ram=0.2)))) is None
    embedders = [replace(r, model=replace(r.model, tags=("embedding",))) for r in rows_for(hw)]
    assert models.suggest_download(overview(embedders)) is None
