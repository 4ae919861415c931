"""Sentence embeddings for passages and questions, computed on this machine.

The bundled all-MiniLM-L6-v2 is loaded from its installed folder with sentence-transformers,
never fetched. Chunks are cut in the embedder's own word pieces (see chunking.py); the tokenizer
is loaded on its own (the `tokenizers` library) so chunking does not need torch.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from engine import models
from engine.errors import BundledAssetMissing

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
    """all-MiniLM-L6-v2. Loads lazily (torch takes seconds to import); thread-safe `embed`.

    Two backends compute the same vectors: torch in bfloat16 where the CPU has it natively
    (AVX512-BF16, AMX), else onnxruntime in float32 on a model exported here once
    (`onnx_export.py`: 1.4x torch's float32 speed, cosine > 0.9999 to it). Torch float32 is the
    fallback when the export cannot be made. A release build ships the export and no torch: it
    runs onnxruntime in float32 on every CPU. HEARTH_EMBED_DTYPE (float32 | bfloat16) forces
    torch in that type; HEARTH_EMBED_BACKEND (torch | onnxruntime) forces a backend."""

    def __init__(
        self,
        model_id: str = models.BUNDLED_EMBEDDER.id,
        *,
        batch_size: int | None = None,
        threads: int | None = None,
        cache: Path | None = None,
    ) -> None:
        if model_id != models.BUNDLED_EMBEDDER.id:
            raise ValueError(f"unknown embedder {model_id}")
        self.model_id = model_id
        self.folder: Path = models.BUNDLED_EMBEDDER.path()
        self.batch_size = batch_size
        self.threads = threads
        self._cache = cache
        self._model: Any = None
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()
        self.dtype = "not loaded"

    max_seq_tokens = MAX_SEQ_TOKENS
    # Passages per forward pass. Batches are cut from passages sorted by length, so small ones
    # pad little; onnxruntime was fastest at 4 to 8 (37 passages/s at 8, 31 at 32, 21 at 128:
    # bench notes in docs/documents.md), torch keeps sentence-transformers' 32.
    ONNX_BATCH = 8
    TORCH_BATCH = 32

    def model(self) -> Any:
        """The torch SentenceTransformer or the onnxruntime session, loaded on first use."""
        with self._lock:
            if self._model is None and self._session is None:
                self._load()
            return self._session if self._session is not None else self._model

    def _load(self) -> None:
        from engine.documents import onnx_export

        backend = os.environ.get("HEARTH_EMBED_BACKEND", "").strip().lower()
        torch_only = bool(os.environ.get("HEARTH_EMBED_DTYPE", "").strip()) or backend == "torch"
        # A release build ships the export made at build time and no torch: onnxruntime alone.
        shipped = onnx_export.shipped(self.folder, models.BUNDLED_EMBEDDER.sha256)
        if shipped is not None and not torch_only:
            self._session = onnx_export.session(shipped, self.threads)
            self.dtype = "float32 (onnxruntime)"
            log.info("embedder loaded: %s (onnxruntime, shipped export)", shipped)
            return
        try:
            import torch
        except ImportError:  # a frozen build whose export is missing or not of these weights
            raise BundledAssetMissing(
                "The document embedder cannot start: this build has no torch and no usable "
                f"ONNX export in {self.folder / onnx_export.SHIPPED}. Reinstall Hearth."
            ) from None

        if self.threads:
            torch.set_num_threads(self.threads)
        dtype = _fastest_cpu_dtype(torch)
        if (dtype == torch.float32 and not torch_only) or backend == "onnxruntime":
            try:
                self._session = self._onnx_session()
                self.dtype = "float32 (onnxruntime)"
                log.info("embedder loaded: %s (onnxruntime)", self.folder)
                return
            except Exception:  # no `onnx` to export with, a failed check: torch does it
                log.warning("embedder: no ONNX export, using torch", exc_info=True)
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.utils.logging.disable_progress_bar()  # no bars on stderr
        self._model = SentenceTransformer(
            str(self.folder),
            device="cpu",
            local_files_only=True,
            model_kwargs={"torch_dtype": dtype},
        )
        self.dtype = str(dtype).removeprefix("torch.")
        self._model.max_seq_length = MAX_SEQ_TOKENS
        log.info("embedder loaded: %s", self.folder)

    def _onnx_session(self) -> Any:
        from engine import paths
        from engine.documents import onnx_export

        cache = self._cache or paths.resolve().cache / "embedders"
        path = onnx_export.ensure(self.folder, cache)
        try:
            return onnx_export.session(path, self.threads)
        except Exception:  # a damaged cached file: made again, once
            log.warning("embedder: the cached ONNX export would not load; exporting again")
            path.unlink(missing_ok=True)
            return onnx_export.session(onnx_export.ensure(self.folder, cache), self.threads)

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        model = self.model()
        if self._session is not None:
            return _embed_onnx(self, model, texts, "mean", self.batch_size or self.ONNX_BATCH)
        vectors = model.encode(
            texts,
            batch_size=self.batch_size or self.TORCH_BATCH,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


def _embed_onnx(
    e: _WordPieces, session: Any, texts: list[str], pooling: str, batch_size: int
) -> np.ndarray:
    """Unit vectors from an onnxruntime BERT: texts tokenized once, cut to the model's
    length, batched by length (little padding), results put back in the callers' order."""
    from engine.documents.onnx_export import mean_pool, run_batch

    encoded = [
        _cut(e.tokenizer.encode(t, add_special_tokens=True).ids, e.max_seq_tokens) for t in texts
    ]
    order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
    out = np.zeros((len(texts), e.dimensions), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        hidden, mask = run_batch(session, [encoded[i] for i in batch])
        out[batch] = hidden[:, 0] if pooling == "cls" else mean_pool(hidden, mask)
    out /= np.linalg.norm(out, axis=1, keepdims=True).clip(min=1e-12)
    return out


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
        return _embed_onnx(self, self.model(), texts, self.pooling, self.batch_size)


def _cut(ids: list[int], limit: int) -> list[int]:
    """At most `limit` ids, the closing [SEP] kept, as sentence-transformers truncates."""
    return ids if len(ids) <= limit else ids[: limit - 1] + ids[-1:]


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
