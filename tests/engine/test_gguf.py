"""The GGUF validator accepts the real bundled model and refuses broken or hostile files
before llama.cpp sees them."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from engine import gguf
from engine.errors import InvalidModelFile
from engine.runtime import LoadParams
from tests.runtimes import new_runtime


def test_bundled_model_metadata(bundled_gguf: Path) -> None:
    info = gguf.inspect(bundled_gguf)
    assert info.architecture == "llama"
    assert info.block_count == 30
    assert info.head_count == 9 and info.head_count_kv == 3
    assert info.context_length == 8192
    assert info.quantization == "Q4_1"
    assert 130e6 < info.parameter_count < 140e6  # SmolLM2-135M
    assert info.chat_template and "<|im_start|>" in info.chat_template
    assert info.data_offset + info.tensor_bytes <= info.file_size


def _header(n_tensors: int, n_kv: int, version: int = 3) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", version, n_tensors, n_kv)


def _kv_string(key: str, value_len: int, value: bytes = b"") -> bytes:
    k = key.encode()
    return struct.pack("<Q", len(k)) + k + struct.pack("<IQ", 8, value_len) + value


def test_truncated_file_is_refused(bundled_gguf: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(bundled_gguf.read_bytes()[:50_000_000])
    with pytest.raises(InvalidModelFile, match="truncated"):
        gguf.inspect(cut)


def test_wrong_magic_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"PK\x03\x04" + b"\0" * 4096)
    with pytest.raises(InvalidModelFile, match="not a GGUF model file") as caught:
        gguf.inspect(bad)
    assert "b'" not in caught.value.user_message  # no Python bytes for people to read
    assert "PK" in (caught.value.detail or "")  # they are in the detail, for the log


@pytest.mark.parametrize(
    "payload, message",
    [
        (_header(2**60, 0), "claims 1,152,921,504,606,846,976 tensors"),
        (_header(0, 2**40), "metadata entries"),
        (_header(0, 1) + _kv_string("general.name", 2**62), "claims a length"),
        (_header(0, 1) + b"\x04\0\0\0\0\0\0\0name" + struct.pack("<IIQ", 9, 4, 2**40), "items"),
        (_header(1, 0, version=99), "version 99"),
    ],
)
def test_absurd_header_claims_are_refused(tmp_path: Path, payload: bytes, message: str) -> None:
    bad = tmp_path / "absurd.gguf"
    bad.write_bytes(payload + b"\0" * 4096)
    with pytest.raises(InvalidModelFile, match=message):
        gguf.inspect(bad)


def test_runtime_refuses_bad_files_before_starting_the_worker(tmp_path: Path) -> None:
    bad = tmp_path / "absurd.gguf"
    bad.write_bytes(_header(2**60, 0) + b"\0" * 64)
    runtime = new_runtime()
    try:
        with pytest.raises(InvalidModelFile) as caught:
            runtime.load(LoadParams(str(bad)))
        assert "absurd.gguf" in caught.value.user_message
        assert runtime.worker_pid is None  # llama.cpp never saw the file
    finally:
        runtime.close()
