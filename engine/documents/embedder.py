"""Sentence embeddings for passages and questions, computed on this machine.

The bundled all-MiniLM-L6-v2 is loaded from its installed folder with sentence-transformers,
never fetched. Chunks are cut in the embedder's own word pieces (see chunking.py); the tokenizer
is loaded on its own (the `tokenizers` library) so chunking does not need torch.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from engine import models

log = logging.getLogger(__name__)

MAX_SEQ_TOKENS = 256  # all-MiniLM-L6-v2's limit, markers included
CONTEXT_TOKENS = 32  # at most this much of "file › heading" goes in front of a passage


class Embedder:
    """Loads lazily (torch takes seconds to import); thread-safe `embed`."""

    def __init__(
        self,
        model_id: str = models.BUNDLED_EMBEDDER.id,
        *,
        batch_size: int = 32,
        threads: int | None = None,
    ) -> None:
        if model_id != models.BUNDLED_EMBEDDER.id:
            raise ValueError(f"unknown embedder {model_id}")
        self.model_id = model_id
        self.folder: Path = models.BUNDLED_EMBEDDER.path()
        self.batch_size = batch_size
        self.threads = threads
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()
        self.dtype = "not loaded"

    # What it was trained on: files in other languages get a note (documents/language.py).
    languages: tuple[str, ...] = ("English",)

    @property
    def dimensions(self) -> int:
        return 384

    @property
    def tokenizer(self) -> Any:
        """The word-piece tokenizer (`tokenizers.Tokenizer`), without truncation or padding."""
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
            tok.no_truncation()
            tok.no_padding()
            self._tokenizer = tok
        return self._tokenizer

    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                import torch
                import transformers
                from sentence_transformers import SentenceTransformer

                transformers.utils.logging.disable_progress_bar()  # no bars on stderr

                if self.threads:
                    torch.set_num_threads(self.threads)
                dtype = _fastest_cpu_dtype(torch)
                self._model = SentenceTransformer(
                    str(self.folder),
                    device="cpu",
                    local_files_only=True,
                    model_kwargs={"torch_dtype": dtype},
                )
                self.dtype = str(dtype).removeprefix("torch.")
                self._model.max_seq_length = MAX_SEQ_TOKENS
                log.info("embedder loaded: %s", self.folder)
            return self._model

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        model = self.model()
        vectors = model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def passage_input(self, context: str, text: str, text_tokens: int) -> str:
        """What is embedded for a passage: a short "file › heading" line, then the passage.
        The line is cut (in word pieces) so that the whole input still fits the model."""
        room = min(CONTEXT_TOKENS, MAX_SEQ_TOKENS - 2 - text_tokens - 1)
        if room <= 0 or not context:
            return text
        enc = self.tokenizer.encode(context, add_special_tokens=False)
        if len(enc.ids) > room:
            context = context[: enc.offsets[room - 1][1]]
        return f"{context}\n{text}"

    def count_tokens(self, text: str) -> int:
        """Word pieces the model sees for `text`, markers included."""
        return len(self.tokenizer.encode(text, add_special_tokens=True).ids)


def _fastest_cpu_dtype(torch: Any) -> Any:
    """bfloat16 where the CPU computes it natively (AVX512-BF16, AMX): 2.75x the float32
    speed here with the same top-5 passages 99% of the time (bench/bench_documents.py).
    Elsewhere bfloat16 is emulated and slower, so float32. HEARTH_EMBED_DTYPE overrides."""
    import os

    forced = os.environ.get("HEARTH_EMBED_DTYPE", "").strip().lower()
    if forced in ("float32", "bfloat16"):
        return getattr(torch, forced)
    try:
        native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        native = False
    return torch.bfloat16 if native else torch.float32
