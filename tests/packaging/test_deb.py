"""packaging/linux/make_deb.sh: the .deb's Depends comes from the frozen binaries (not from the
build machine's C library), Qt's Wayland libraries are declared, a copyright file ships, and the
same frozen folder gives the same bytes twice."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAKE_DEB = ROOT / "packaging" / "linux" / "make_deb.sh"


def _newest_glibc(binary: Path) -> str:
    symbols = subprocess.run(["objdump", "-T", str(binary)], capture_output=True, text=True)
    versions = set(re.findall(r"\bGLIBC_(\d+(?:\.\d+)+)\b", symbols.stdout))
    return max(versions, key=lambda v: tuple(int(p) for p in v.split(".")))


def _make(dist: Path, out: Path, **env: str) -> subprocess.CompletedProcess[str]:
    ours = ("SOURCE_DATE_EPOCH", "HEARTH_GLIBC_BASELINE")  # the script's own defaults
    return subprocess.run(
        ["bash", str(MAKE_DEB), str(dist), "1.2.3", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**{k: v for k, v in os.environ.items() if k not in ours}, **env},
    )


def test_the_deb_depends_on_what_its_binaries_need_and_is_reproducible(tmp_path: Path) -> None:
    dist = tmp_path / "hearth"
    (dist / "_internal").mkdir(parents=True)
    # Real ELF files: `true` stands in for the launchers, zlib's library for _internal.
    true = Path(shutil.which("true") or "/bin/true")
    shutil.copy(true, dist / "hearth")
    shutil.copy(true, dist / "hearth-gui")
    zlib = next(Path("/lib/x86_64-linux-gnu").glob("libz.so.1*"), None) or next(
        Path("/usr/lib").rglob("libz.so.1*")
    )
    shutil.copy(zlib, dist / "_internal" / "libz.so.1")
    (dist / "_internal" / "llama_cpp" / "lib").mkdir(parents=True)
    shutil.copy(zlib, dist / "_internal" / "llama_cpp" / "lib" / "libggml-vulkan.so")
    expected = max(
        (_newest_glibc(p) for p in (dist / "hearth", dist / "_internal" / "libz.so.1")),
        key=lambda v: tuple(int(p) for p in v.split(".")),
    )

    first = _make(dist, tmp_path / "a.deb")
    assert first.returncode == 0, first.stderr
    time.sleep(1.1)  # a second build, later, with the files touched since
    for f in dist.rglob("*"):
        os.utime(f)
    second = _make(dist, tmp_path / "b.deb")
    assert second.returncode == 0, second.stderr
    assert (tmp_path / "a.deb").read_bytes() == (tmp_path / "b.deb").read_bytes()

    control = subprocess.run(
        ["dpkg-deb", "-f", str(tmp_path / "a.deb"), "Depends"], capture_output=True, text=True
    ).stdout
    assert f"libc6 (>= {expected})" in control
    assert "libwayland-client0" in control and "libxcb-cursor0" in control
    recommends = subprocess.run(
        ["dpkg-deb", "-f", str(tmp_path / "a.deb"), "Recommends"], capture_output=True, text=True
    ).stdout
    assert recommends.strip() == "libvulkan1"  # the Vulkan module is shipped
    listing = subprocess.run(
        ["dpkg-deb", "-c", str(tmp_path / "a.deb")], capture_output=True, text=True
    ).stdout
    assert "./usr/share/doc/hearth/copyright" in listing
    assert "./opt/hearth/_internal/libz.so.1" in listing
    assert re.search(r"^drwxr-xr-x root/root .* \./$", listing, re.M), listing.splitlines()[0]


def test_a_bundle_needing_a_newer_glibc_than_the_baseline_is_refused(tmp_path: Path) -> None:
    dist = tmp_path / "hearth"
    dist.mkdir()
    shutil.copy(Path(shutil.which("true") or "/bin/true"), dist / "hearth")
    refused = _make(dist, tmp_path / "x.deb", HEARTH_GLIBC_BASELINE="2.2")
    assert refused.returncode == 1 and "newer than the baseline 2.2" in refused.stderr
    assert "needs glibc" in refused.stderr and "hearth" in refused.stderr
    assert not (tmp_path / "x.deb").exists()
    assert _make(dist, tmp_path / "y.deb", HEARTH_GLIBC_BASELINE="99.0").returncode == 0
