"""Validate a GGUF file before llama.cpp sees it, and read its metadata.

llama.cpp parses GGUF headers in C++; a hostile or truncated file can make it allocate
absurd amounts of memory or abort the process. `inspect()` walks the header in Python with a
bound on every count and length, checks that every tensor lies inside the file, and only then
returns the metadata the rest of the app needs. Nothing here allocates in proportion to what
the file claims.

Format reference: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
"""

from __future__ import annotations

import mmap
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import InvalidModelFile

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32

# Bounds well above any real model and far below what would hurt us.
MAX_TENSORS = 1_000_000
MAX_KV = 100_000
MAX_KEY_LEN = 65_535
MAX_STRING_LEN = 16 * 1024 * 1024  # chat templates are kilobytes; 16 MiB is generous
MAX_ARRAY_LEN = 16 * 1024 * 1024  # vocabularies and merges are at most a few hundred thousand
MAX_DIMS = 4  # GGML_MAX_DIMS
KEEP_ARRAY_VALUES = 64  # arrays longer than this are summarised, not kept

# GGUF value types
_UINT8, _INT8, _UINT16, _INT16, _UINT32, _INT32, _FLOAT32, _BOOL, _STRING, _ARRAY = range(10)
_UINT64, _INT64, _FLOAT64 = 10, 11, 12
_SCALARS: dict[int, str] = {
    _UINT8: "<B",
    _INT8: "<b",
    _UINT16: "<H",
    _INT16: "<h",
    _UINT32: "<I",
    _INT32: "<i",
    _FLOAT32: "<f",
    _BOOL: "<?",
    _UINT64: "<Q",
    _INT64: "<q",
    _FLOAT64: "<d",
}


@dataclass(frozen=True)
class ArraySummary:
    """A long array (a vocabulary, merges) kept as its type and length only."""

    item_type: int
    length: int


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int
    n_elements: int
    n_bytes: int


@dataclass
class GGUFInfo:
    """What we know about a GGUF file after validation."""

    path: Path
    file_size: int
    version: int
    metadata: dict[str, Any]
    tensors: list[TensorInfo] = field(repr=False)
    data_offset: int = 0

    def _arch_key(self, suffix: str) -> Any:
        return self.metadata.get(f"{self.architecture}.{suffix}")

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "unknown"))

    @property
    def name(self) -> str:
        return str(self.metadata.get("general.name") or self.path.stem)

    @property
    def context_length(self) -> int | None:
        return _as_int(self._arch_key("context_length"))

    @property
    def block_count(self) -> int | None:
        return _as_int(self._arch_key("block_count"))

    @property
    def head_count(self) -> int | None:
        return _as_int(self._arch_key("attention.head_count"))

    @property
    def head_count_kv(self) -> int | None:
        return _as_int(self._arch_key("attention.head_count_kv")) or self.head_count

    @property
    def embedding_length(self) -> int | None:
        return _as_int(self._arch_key("embedding_length"))

    @property
    def chat_template(self) -> str | None:
        value = self.metadata.get("tokenizer.chat_template")
        return value if isinstance(value, str) and value.strip() else None

    @property
    def parameter_count(self) -> int:
        return sum(t.n_elements for t in self.tensors)

    @property
    def tensor_bytes(self) -> int:
        return sum(t.n_bytes for t in self.tensors)

    @property
    def quantization(self) -> str:
        """The file type the converter recorded, else the type holding most bytes."""
        from gguf.constants import GGMLQuantizationType, LlamaFileType

        file_type = _as_int(self.metadata.get("general.file_type"))
        if file_type is not None:
            try:
                return LlamaFileType(file_type).name.removeprefix("MOSTLY_")
            except ValueError:
                pass
        by_bytes: Counter[int] = Counter()
        for t in self.tensors:
            by_bytes[t.ggml_type] += t.n_bytes
        if not by_bytes:
            return "unknown"
        return GGMLQuantizationType(by_bytes.most_common(1)[0][0]).name

    def summary(self) -> dict[str, Any]:
        """Plain data for the CLI, the UI and the model list."""
        return {
            "path": str(self.path),
            "name": self.name,
            "architecture": self.architecture,
            "parameters": self.parameter_count,
            "quantization": self.quantization,
            "context_length": self.context_length,
            "layers": self.block_count,
            "heads": self.head_count,
            "kv_heads": self.head_count_kv,
            "embedding_length": self.embedding_length,
            "file_size": self.file_size,
            "has_chat_template": self.chat_template is not None,
            "gguf_version": self.version,
        }


def inspect(path: str | Path) -> GGUFInfo:
    """Validate `path` as a GGUF model and return its metadata.

    Raises InvalidModelFile, with a message naming the file and what is wrong, for anything
    llama.cpp should not be handed.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            size = path.stat().st_size
            if size < 24:
                raise InvalidModelFile(
                    f"“{path.name}” is not a usable model: the file is only {size} bytes long."
                )
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                return _Parser(path, buf, size).parse()
    except InvalidModelFile:
        raise
    except FileNotFoundError:
        raise InvalidModelFile(f"The model file “{path}” does not exist.") from None
    except IsADirectoryError:
        raise InvalidModelFile(f"“{path}” is a folder, not a model file.") from None
    except (OSError, ValueError) as exc:
        raise InvalidModelFile(
            f"The model file “{path.name}” could not be read.", str(exc)
        ) from exc


class _Parser:
    def __init__(self, path: Path, buf: mmap.mmap, size: int) -> None:
        self.path = path
        self.buf = buf
        self.size = size
        self.pos = 0

    def fail(self, problem: str) -> InvalidModelFile:
        return InvalidModelFile(f"“{self.path.name}” is not a valid GGUF model: {problem}.")

    def truncated(self, what: str) -> InvalidModelFile:
        return InvalidModelFile(
            f"“{self.path.name}” is truncated or corrupt: it ends inside {what} "
            f"(at byte {self.pos:,} of {self.size:,}). Download or copy it again."
        )

    def take(self, n: int, what: str) -> int:
        if n < 0 or self.pos + n > self.size:
            raise self.truncated(what)
        start = self.pos
        self.pos += n
        return start

    def scalar(self, fmt: str, what: str) -> Any:
        start = self.take(struct.calcsize(fmt), what)
        return struct.unpack_from(fmt, self.buf, start)[0]

    def string(self, what: str, limit: int = MAX_STRING_LEN) -> str:
        n = self.scalar("<Q", what)
        if n > limit:
            raise self.fail(f"{what} claims a length of {n:,} bytes (limit {limit:,})")
        start = self.take(n, what)
        return bytes(self.buf[start : start + n]).decode("utf-8", errors="replace")

    def skip_string(self, what: str) -> None:
        n = self.scalar("<Q", what)
        if n > MAX_STRING_LEN:
            raise self.fail(f"{what} claims a length of {n:,} bytes (limit {MAX_STRING_LEN:,})")
        self.take(n, what)

    def value(self, vtype: int, what: str, depth: int = 0) -> Any:
        if vtype in _SCALARS:
            return self.scalar(_SCALARS[vtype], what)
        if vtype == _STRING:
            return self.string(what)
        if vtype == _ARRAY:
            if depth > 0:
                raise self.fail(f"{what} nests arrays, which GGUF models do not use")
            item_type = self.scalar("<I", what)
            length = self.scalar("<Q", what)
            if length > MAX_ARRAY_LEN:
                raise self.fail(f"{what} claims {length:,} items (limit {MAX_ARRAY_LEN:,})")
            if item_type in _SCALARS:
                item_size = struct.calcsize(_SCALARS[item_type])
                if self.pos + length * item_size > self.size:
                    raise self.truncated(what)
                if length > KEEP_ARRAY_VALUES:
                    self.take(length * item_size, what)
                    return ArraySummary(item_type, length)
                return [self.value(item_type, what, depth + 1) for _ in range(length)]
            if item_type == _STRING:
                # Each item takes at least its 8-byte length: reject impossible claims at once.
                if self.pos + length * 8 > self.size:
                    raise self.truncated(what)
                if length > KEEP_ARRAY_VALUES:
                    for _ in range(length):
                        self.skip_string(what)
                    return ArraySummary(item_type, length)
                return [self.string(what) for _ in range(length)]
            raise self.fail(f"{what} has an array of unknown type {item_type}")
        raise self.fail(f"{what} has unknown value type {vtype}")

    def parse(self) -> GGUFInfo:
        magic = bytes(self.buf[0:4])
        if magic != MAGIC:
            raise InvalidModelFile(
                f"“{self.path.name}” is not a GGUF model file: GGUF files begin with the "
                "letters GGUF, and this one does not. Hearth runs GGUF models; download or "
                "convert a GGUF version of this model.",
                f"first bytes {magic!r}",  # for the log, not for people
            )
        self.pos = 4
        version = self.scalar("<I", "the header")
        if version not in SUPPORTED_VERSIONS:
            raise self.fail(
                f"GGUF version {version} is not supported (supported: "
                f"{', '.join(map(str, SUPPORTED_VERSIONS))})"
            )
        n_tensors = self.scalar("<Q", "the header")
        n_kv = self.scalar("<Q", "the header")
        # Each key/value takes at least 13 bytes and each tensor record at least 24, so a count
        # the file cannot hold is refused before we loop over it.
        if n_tensors > MAX_TENSORS or n_tensors * 24 > self.size:
            raise self.fail(
                f"the header claims {n_tensors:,} tensors, more than the file or any "
                f"real model could hold (limit {MAX_TENSORS:,})"
            )
        if n_kv > MAX_KV or n_kv * 13 > self.size:
            raise self.fail(
                f"the header claims {n_kv:,} metadata entries, more than the file "
                f"or any real model could hold (limit {MAX_KV:,})"
            )

        metadata: dict[str, Any] = {}
        for i in range(n_kv):
            key = self.string(f"metadata key #{i}", limit=MAX_KEY_LEN)
            if key in metadata:
                raise self.fail(f"metadata key “{key}” appears twice")
            vtype = self.scalar("<I", f"metadata “{key}”")
            metadata[key] = self.value(vtype, f"metadata “{key}”")

        alignment = _as_int(metadata.get("general.alignment")) or DEFAULT_ALIGNMENT
        if alignment <= 0 or alignment & (alignment - 1) or alignment > 1 << 20:
            raise self.fail(f"alignment {alignment} is not a small power of two")

        from gguf.constants import GGML_QUANT_SIZES

        raw: list[tuple[str, tuple[int, ...], int, int]] = []
        names: set[str] = set()
        for i in range(n_tensors):
            name = self.string(f"tensor #{i} name", limit=MAX_KEY_LEN)
            if name in names:
                raise self.fail(f"tensor “{name}” appears twice")
            names.add(name)
            n_dims = self.scalar("<I", f"tensor “{name}”")
            if not 1 <= n_dims <= MAX_DIMS:
                raise self.fail(f"tensor “{name}” has {n_dims} dimensions (1 to {MAX_DIMS})")
            shape = tuple(self.scalar("<Q", f"tensor “{name}”") for _ in range(n_dims))
            ggml_type = self.scalar("<I", f"tensor “{name}”")
            offset = self.scalar("<Q", f"tensor “{name}”")
            raw.append((name, shape, ggml_type, offset))

        data_offset = -(-self.pos // alignment) * alignment
        data_size = self.size - data_offset
        tensors: list[TensorInfo] = []
        for name, shape, ggml_type, offset in raw:
            sizes = GGML_QUANT_SIZES.get(ggml_type)  # type: ignore[call-overload]
            if sizes is None:
                raise self.fail(f"tensor “{name}” has unknown data type {ggml_type}")
            block, type_size = sizes
            n_elements = 1
            for dim in shape:
                if dim < 0 or dim > 1 << 40:
                    raise self.fail(f"tensor “{name}” has an impossible dimension {dim:,}")
                n_elements *= dim
            if n_elements > 1 << 48 or shape[0] % block:
                raise self.fail(f"tensor “{name}” has an impossible shape {shape}")
            n_bytes = n_elements // block * type_size
            if offset % alignment:
                raise self.fail(f"tensor “{name}” is not aligned to {alignment} bytes")
            if offset + n_bytes > data_size:
                need = data_offset + offset + n_bytes
                raise InvalidModelFile(
                    f"“{self.path.name}” is truncated: its header describes {need:,} bytes but "
                    f"the file holds only {self.size:,}. Download or copy it again."
                )
            tensors.append(TensorInfo(name, shape, ggml_type, offset, n_elements, n_bytes))

        return GGUFInfo(self.path, self.size, version, metadata, tensors, data_offset)


def _as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
