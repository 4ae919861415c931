"""Make real GGUF variants for tests: the bundled model with one metadata value changed.

Uses the `gguf` library's reader to find each field's bytes, then writes the same header with
one key replaced (or removed) and the tensor data copied unchanged after realignment.
"""

from __future__ import annotations

import struct
from pathlib import Path

from gguf import GGUFReader

_UINT32, _FLOAT32, _STRING = 4, 6, 8


def _encode_string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


def _encode_value(value: str | int | float) -> bytes:
    """A GGUF value with its type: strings, uint32 for ints, float32 for floats."""
    if isinstance(value, str):
        return struct.pack("<I", _STRING) + _encode_string(value)
    if isinstance(value, int):
        return struct.pack("<II", _UINT32, value)
    return struct.pack("<If", _FLOAT32, value)


def with_string_metadata(src: Path, dst: Path, key: str, value: str | None) -> Path:
    """Copy `src` to `dst` with string metadata `key` set to `value` (None removes it)."""
    return with_metadata(src, dst, {key: value})


def with_metadata(src: Path, dst: Path, values: dict[str, str | int | float | None]) -> Path:
    """Copy `src` to `dst` with each metadata key in `values` set (None removes it)."""
    reader = GGUFReader(src)
    data = src.read_bytes()
    fields = list(reader.fields.values())
    kv_fields = [f for f in fields if not f.name.startswith("GGUF.")]
    out_kv = bytearray()
    count = 0
    for field in kv_fields:
        size = sum(p.nbytes for p in field.parts)
        if field.name in values:
            continue
        out_kv += data[field.offset : field.offset + size]
        count += 1
    for key, value in values.items():
        if value is not None:
            out_kv += _encode_string(key) + _encode_value(value)
            count += 1
    first = reader.tensors[0].field
    last = reader.tensors[-1].field
    tensor_infos = data[first.offset : last.offset + sum(p.nbytes for p in last.parts)]
    alignment = int(reader.alignment)
    header = b"GGUF" + struct.pack("<IQQ", 3, len(reader.tensors), count) + out_kv + tensor_infos
    header += b"\0" * (-len(header) % alignment)
    dst.write_bytes(header + data[reader.data_offset :])
    return dst
