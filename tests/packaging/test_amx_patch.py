"""The AMX patch (packaging/patches/llama-amx-tile-config.patch) applies to the llama-cpp-python
release the set-up builds, and the kernel compiled from it loads the right tile configuration.

llama.cpp's AMX kernel faults on Sapphire Rapids (llama.cpp issue #20824): it builds its tile
configuration on the stack before `ldtilecfg`, and the compiler drops most of the stores. No
machine here has AMX, so the proof is in the machine code: `amx/mmq.cpp`, compiled as a
Sapphire Rapids build compiles it, must load its configuration from constant data holding
exactly the 64 bytes the kernel needs (palette 1; colsb 64, 64, 32, 32, 64, 64, 64, 64; rows 8,
8, 16 x 6). The unpatched source is compiled beside it as the control: its `ldtilecfg` reads the
stack, where this compiler kept only the palette byte.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PATCH = ROOT / "packaging" / "patches" / "llama-amx-tile-config.patch"
MMQ = "vendor/llama.cpp/ggml/src/ggml-cpu/amx/mmq.cpp"
EXPECTED = bytes([1, 0] + [0] * 14) + struct.pack("<16H", 64, 64, 32, 32, 64, 64, 64, 64, *[0] * 8)
EXPECTED += bytes([8, 8, 16, 16, 16, 16, 16, 16] + [0] * 8)


def llama_version() -> str:
    text = (ROOT / "scripts" / "_llama.sh").read_text()
    match = re.search(r"^LLAMA_VERSION=([0-9.]+)", text, re.M)
    assert match
    return match[1]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist the set-up builds, unpacked (downloaded once into the wheel cache)."""
    cache = (
        Path(
            os.environ.get("HEARTH_LLAMA_WHEELS")
            or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
            / "hearth/llama-wheels"
        )
        / "sdist"
    )
    version = llama_version()
    archive = cache / f"llama_cpp_python-{version}.tar.gz"
    if not archive.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
             "-d", str(cache), f"llama-cpp-python=={version}"],
            check=True,
        )  # fmt: skip
    out = tmp_path_factory.mktemp("sdist")
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if "/vendor/llama.cpp/ggml/" in m.name]
        tar.extractall(out, members=members, filter="data")
    return next(out.iterdir())


def compile_kernel(tree: Path, out: Path) -> Path:
    ggml = tree / "vendor/llama.cpp/ggml"
    obj = out / "mmq.o"
    subprocess.run(
        ["g++", "-std=c++17", "-O3", "-march=sapphirerapids", "-DGGML_USE_CPU",
         f"-I{ggml / 'include'}", f"-I{ggml / 'src'}", f"-I{ggml / 'src/ggml-cpu'}",
         "-c", str(tree / MMQ), "-o", str(obj)],
        check=True,
    )  # fmt: skip
    return obj


def tile_config_load(obj: Path) -> str:
    """The `ldtilecfg` instruction with its relocation, as objdump prints them."""
    listing = subprocess.run(
        ["objdump", "-dr", str(obj)], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    found = [i for i, line in enumerate(listing) if "ldtilecfg" in line]
    assert len(found) == 1, "one tile configuration load in the AMX kernel"
    return "\n".join(listing[found[0] : found[0] + 3])


def rodata(obj: Path, tmp: Path) -> bytes:
    raw = tmp / "rodata.bin"
    subprocess.run(
        ["objcopy", "-O", "binary", "--only-section=.rodata", str(obj), str(raw)], check=True
    )
    return raw.read_bytes()


needs_tools = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("g++", "objdump", "objcopy", "patch")),
    reason="needs g++, binutils and patch (scripts/test installs binutils)",
)


@needs_tools
def test_the_patched_kernel_loads_the_right_64_bytes_from_constant_data(
    source: Path, tmp_path: Path
) -> None:
    patched = tmp_path / "patched"
    shutil.copytree(source, patched)
    subprocess.run(["patch", "-s", "-p1", "-d", str(patched), "-i", str(PATCH)], check=True)
    obj = compile_kernel(patched, tmp_path)
    load = tile_config_load(obj)
    reloc = re.search(r"R_X86_64_PC32\s+\.rodata\+0x([0-9a-f]+)", load)
    assert "(%rip)" in load and reloc, load
    # A PC-relative operand's addend is the target minus the 4 bytes of the displacement.
    offset = int(reloc[1], 16) + 4
    assert offset % 64 == 0, "ldtilecfg needs no alignment, but the constant is 64-byte aligned"
    assert rodata(obj, tmp_path)[offset : offset + 64] == EXPECTED


@needs_tools
def test_unpatched_the_kernel_loads_its_configuration_from_the_stack(
    source: Path, tmp_path: Path
) -> None:
    """The control: the defect the patch answers is in this compiler's output."""
    load = tile_config_load(compile_kernel(source, tmp_path))
    assert "(%rsp)" in load and ".rodata" not in load, load
