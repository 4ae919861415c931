"""model_catalog.json against its schema, and against the real bundled files."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from engine import gguf
from engine.errors import CatalogError
from engine.files import sha256_file
from engine.models import bundled, catalog


def raw() -> dict:
    return json.loads(catalog.CATALOG_PATH.read_text(encoding="utf-8"))


def test_shipped_catalog_validates_against_its_schema() -> None:
    catalog.validate(raw())
    models = catalog.load().models
    assert len(models) >= 17
    chat = [m for m in models if "chat" in m.tags]
    embedders = [m for m in models if "embedding" in m.tags]
    # Only embedders the document pipeline can use: the bundled one. (nomic-embed was offered
    # "for document search" while the embedder refused any model but the bundled one.)
    assert len(chat) >= 15 and [m.id for m in embedders] == ["all-minilm-l6-v2"]
    sizes = sorted(m.parameters for m in chat)
    assert sizes[0] < 200e6 and 13e9 < sizes[-1] < 15.5e9  # from 135M to 14B
    families = {m.family for m in chat}
    assert {
        "Llama 3.2",
        "Llama 3.1",
        "Qwen2.5",
        "Qwen3",
        "Mistral",
        "Gemma 2",
        "Phi",
        "DeepSeek-R1",
        "SmolLM2",
    } <= families
    assert len({m.quantization for m in chat}) >= 4


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d["models"][0].pop("sha256"),
        lambda d: d["models"][0].__setitem__("sha256", "abc"),
        lambda d: d["models"][0].__setitem__("tags", ["chat", "vision"]),
        lambda d: d["models"][0].__setitem__("revision", "main"),  # pinned but not a commit
        lambda d: d["models"].append(copy.deepcopy(d["models"][0])),  # duplicate id
        lambda d: d["models"][0]["license"].pop("url"),
        lambda d: d["models"][0].__setitem__("file", "../escape.gguf"),
    ],
)
def test_a_broken_catalog_is_rejected(breakage, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    document = raw()
    breakage(document)
    with pytest.raises(CatalogError):
        catalog.validate(document)
    bad = tmp_path / "catalog.json"
    bad.write_text(json.dumps(document))
    with pytest.raises(CatalogError):
        catalog.load(bad)


def test_unchecked_entries_say_so() -> None:
    for m in catalog.load().models:
        if m.sha256 is None:
            assert m.sha256_source.startswith("not checked")
        if not m.revision_pinned:
            assert m.sha256 is None  # an unpinned revision can only be checked at download


def test_bundled_entries_carry_the_real_sha256_and_size() -> None:
    cat = catalog.load()
    chat = next(m for m in cat.models if m.bundled_as == bundled.CHAT.id)
    path = bundled.CHAT.path()
    assert chat.sha256 == sha256_file(path) and chat.size_exact
    assert chat.size_bytes == path.stat().st_size
    info = gguf.inspect(path)
    a = chat.architecture
    assert (a.layers, a.heads, a.kv_heads, a.embedding_length) == (
        info.block_count,
        info.head_count,
        info.head_count_kv,
        info.embedding_length,
    )
    assert chat.quantization == info.quantization and chat.context_length == info.context_length
    embedder = next(m for m in cat.models if m.bundled_as == bundled.EMBEDDER.id)
    weights = bundled.EMBEDDER.path() / "model.safetensors"
    assert embedder.sha256 == sha256_file(weights)
    assert embedder.size_bytes == weights.stat().st_size


def test_search_matches_every_word() -> None:
    cat = catalog.load()
    assert {m.id for m in cat.search("qwen2.5 7b")} == {"qwen2.5-7b-instruct-q4_k_m"}
    assert len(cat.search("qwen 7b")) == 3  # the R1 distills are Qwen-based too
    assert all(
        "reasoning" in m.tags or "reasoning" in m.description.lower()
        for m in cat.search("reasoning")
    )
    assert cat.search("no such model anywhere") == []
    with pytest.raises(CatalogError, match="no model called"):
        cat.get("nope")


def test_the_shipped_catalog_loads_without_jsonschema_and_a_damaged_one_is_refused(
    tmp_path: Path, monkeypatch
) -> None:
    """Schema checking belongs to the tests above (and so to every build): importing
    jsonschema at run time took seconds of the interpreter from the window's first answer."""
    import subprocess
    import sys

    probe = (
        "import sys; from engine.models import catalog; catalog.load(); "
        "print('jsonschema' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
    damaged = json.loads(catalog.CATALOG_PATH.read_text())
    del damaged["models"][0]["repo"]
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(damaged))
    monkeypatch.setattr(catalog, "CATALOG_PATH", path)
    with pytest.raises(CatalogError, match="not valid"):
        catalog.load()
