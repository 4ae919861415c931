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

MAX_SEQ_TOKENS = 256  # all-MiniLM-L6-v2's limit, markers included; passages stay within it
CONTEXT_TOKENS = 32  # at most this much of "file › heading" goes in front of a passage


class _WordPieces:
    """What both embedders share: a BERT word-piece tokenizer in `folder`, 384 dimensions,
    English training data, and how a passage is put to the model."""

    folder: Path
    max_seq_tokens: int
    _tokenizer: Any = None
    # What it was trained on: files in other languages get a note (documents/language.py).
    languages: tuple[str, ...] = ("English",)
    query_prefix = ""  # an instruction some models (bge) are trained to see before a question

    def embed(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def embed_query(self, text: str) -> np.ndarray:
        """The vector a question is searched with."""
        return self.embed([self.query_prefix + text])[0]

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

    def passage_input(self, context: str, text: str, text_tokens: int) -> str:
        """What is embedded for a passage: a short "file › heading" line, then the passage.
        The line is cut (in word pieces) so that the whole input still fits the model."""
        room = min(CONTEXT_TOKENS, self.max_seq_tokens - 2 - text_tokens - 1)
        if room <= 0 or not context:
            return text
        enc = self.tokenizer.encode(context, add_special_tokens=False)
        if len(enc.ids) > room:
            context = context[: enc.offsets[room - 1][1]]
        return f"{context}\n{text}"

    def count_tokens(self, text: str) -> int:
        """Word pieces the model sees for `text`, markers included."""
        return len(self.tokenizer.encode(text, add_special_tokens=True).ids)


class Embedder(_WordPieces):
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

    max_seq_tokens = MAX_SEQ_TOKENS

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


class OnnxEmbedder(_WordPieces):
    """A BERT-style embedder exported to ONNX (bge-small-en-v1.5, int8), run by onnxruntime:
    no torch, about a third of its memory. The same interface as `Embedder`."""

    def __init__(
        self,
        model: models.BundledModel,
        *,
        pooling: str,
        query_prefix: str = "",
        max_seq_tokens: int = 512,
        batch_size: int = 32,
        threads: int | None = None,
    ) -> None:
        self.model_id = model.id
        self.folder: Path = model.path()
        self.pooling = pooling
        self.query_prefix = query_prefix
        self.max_seq_tokens = max_seq_tokens
        self.batch_size = batch_size
        self.threads = threads
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()
        self.dtype = "int8 (onnxruntime)"

    def model(self) -> Any:
        with self._lock:
            if self._session is None:
                import onnxruntime as ort

                options = ort.SessionOptions()
                if self.threads:
                    options.intra_op_num_threads = self.threads
                options.log_severity_level = 3
                self._session = ort.InferenceSession(
                    str(self.folder / "model.onnx"), options, providers=["CPUExecutionProvider"]
                )
                log.info("embedder loaded: %s", self.folder)
            return self._session

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        session = self.model()
        encoded = [
            self.tokenizer.encode(t, add_special_tokens=True).ids[: self.max_seq_tokens]
            for t in texts
        ]
        # Batches of similar length waste little on padding.
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            width = max(len(encoded[i]) for i in batch)
            ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, i in enumerate(batch):
                ids[row, : len(encoded[i])] = encoded[i]
                mask[row, : len(encoded[i])] = 1
            hidden = session.run(
                None,
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
            )[0]
            if self.pooling == "cls":
                pooled = hidden[:, 0]
            else:
                pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
            out[batch] = pooled
        out /= np.linalg.norm(out, axis=1, keepdims=True).clip(min=1e-12)
        return out


TextEmbedder = Embedder | OnnxEmbedder


def for_model(model_id: str, *, threads: int | None = None) -> TextEmbedder:
    """The embedder a collection records by id; raises ValueError for one Hearth lacks."""
    if model_id == models.BUNDLED_EMBEDDER.id:
        return Embedder(threads=threads)
    if model_id == models.BUNDLED_EMBEDDER_BGE.id:
        return OnnxEmbedder(
            models.BUNDLED_EMBEDDER_BGE,
            pooling="cls",
            query_prefix="Represent this sentence for searching relevant passages: ",
            max_seq_tokens=MAX_SEQ_TOKENS,
            threads=threads,
        )
    raise ValueError(f"unknown embedder {model_id}")


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
