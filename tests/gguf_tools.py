"""Make real GGUF variants for tests: the bundled model with one metadata value changed.

Uses the `gguf` library's reader to find each field's bytes, then writes the same header with
one key replaced (or removed) and the tensor data copied unchanged after realignment.
"""

from __future__ import annotations

import struct
from pathlib import Path

from gguf import GGUFReader

_STRING = 8


def _encode_string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


def with_string_metadata(src: Path, dst: Path, key: str, value: str | None) -> Path:
    """Copy `src` to `dst` with string metadata `key` set to `value` (None removes it)."""
    reader = GGUFReader(src)
    data = src.read_bytes()
    fields = list(reader.fields.values())
    kv_fields = [f for f in fields if not f.name.startswith("GGUF.")]
    out_kv = bytearray()
    count = 0
    replaced = False
    for field in kv_fields:
        size = sum(p.nbytes for p in field.parts)
        if field.name == key:
            replaced = True
            if value is None:
                continue
            out_kv += _encode_string(key) + struct.pack("<I", _STRING) + _encode_string(value)
        else:
            out_kv += data[field.offset : field.offset + size]
        count += 1
    if not replaced and value is not None:
        out_kv += _encode_string(key) + struct.pack("<I", _STRING) + _encode_string(value)
        count += 1
    first = reader.tensors[0].field
    last = reader.tensors[-1].field
    tensor_infos = data[first.offset : last.offset + sum(p.nbytes for p in last.parts)]
    alignment = int(reader.alignment)
    header = b"GGUF" + struct.pack("<IQQ", 3, len(reader.tensors), count) + out_kv + tensor_infos
    header += b"\0" * (-len(header) % alignment)
    dst.write_bytes(header + data[reader.data_offset :])
    return dst
