"""packaging/verify accepts a release signed by the given key and fails on anything tampered,
signed by another key, or missing. Keys are made in the test (tests/packaging/signing.py)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.packaging.signing import ThrowawayKey, write_sums

ROOT = Path(__file__).resolve().parents[2]
VERIFY = ROOT / "packaging" / "verify"


@pytest.fixture
def publisher(tmp_path: Path) -> Iterator[ThrowawayKey]:
    key = ThrowawayKey(tmp_path / "publisher-gnupg")
    yield key
    key.close()


@pytest.fixture
def release(tmp_path: Path, publisher: ThrowawayKey) -> Path:
    folder = tmp_path / "release"
    folder.mkdir()
    (folder / "hearth-1.0-linux-x86_64.tar.gz").write_bytes(b"tarball" * 1000)
    (folder / "hearth_1.0_amd64.deb").write_bytes(b"debian" * 1000)
    publisher.sign(write_sums(folder, ["hearth-1.0-linux-x86_64.tar.gz", "hearth_1.0_amd64.deb"]))
    return folder


def verify(folder: Path, key: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(VERIFY), str(folder), "--key", str(key), *extra],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_good_release_verifies(release: Path, publisher: ThrowawayKey, tmp_path: Path) -> None:
    key = publisher.export(tmp_path / "publisher.asc")
    result = verify(release, key, "--fingerprint", publisher.fingerprint)
    assert result.returncode == 0, result.stderr
    assert "OK  hearth_1.0_amd64.deb" in result.stdout and "all artifacts verified" in result.stdout


def test_a_tampered_artifact_fails(release: Path, publisher: ThrowawayKey, tmp_path: Path) -> None:
    deb = release / "hearth_1.0_amd64.deb"
    deb.write_bytes(deb.read_bytes()[:-1] + b"X")
    result = verify(release, publisher.export(tmp_path / "publisher.asc"))
    assert result.returncode == 1
    assert "hearth_1.0_amd64.deb: sha256 does not match" in result.stderr


def test_edited_sums_break_the_signature(
    release: Path, publisher: ThrowawayKey, tmp_path: Path
) -> None:
    deb = release / "hearth_1.0_amd64.deb"
    deb.write_bytes(b"evil")
    write_sums(release, ["hearth-1.0-linux-x86_64.tar.gz", "hearth_1.0_amd64.deb"])
    result = verify(release, publisher.export(tmp_path / "publisher.asc"))
    assert result.returncode == 1 and "bad signature" in result.stderr


def test_a_signature_by_another_key_fails(
    release: Path, publisher: ThrowawayKey, tmp_path: Path
) -> None:
    other = ThrowawayKey(tmp_path / "attacker-gnupg", "Someone Else")
    try:
        other.sign(release / "SHA256SUMS")
        result = verify(release, publisher.export(tmp_path / "publisher.asc"))
        assert result.returncode == 1 and "not signed by the given key" in result.stderr
        wrong = verify(
            release, other.export(tmp_path / "other.asc"), "--fingerprint", publisher.fingerprint
        )
        assert wrong.returncode == 1 and "was made by" in wrong.stderr
    finally:
        other.close()


def test_a_missing_artifact_or_signature_fails(
    release: Path, publisher: ThrowawayKey, tmp_path: Path
) -> None:
    key = publisher.export(tmp_path / "publisher.asc")
    (release / "hearth-1.0-linux-x86_64.tar.gz").unlink()
    result = verify(release, key)
    assert result.returncode == 1 and "tar.gz: missing" in result.stderr
    (release / "SHA256SUMS.asc").unlink()
    assert verify(release, key).returncode == 1


def _with_build_info(folder: Path, publisher: ThrowawayKey, **info: object) -> None:
    import json

    (folder / "BUILD-INFO.json").write_text(json.dumps(info))
    names = ["hearth-1.0-linux-x86_64.tar.gz", "hearth_1.0_amd64.deb", "BUILD-INFO.json"]
    publisher.sign(write_sums(folder, names))


def test_verify_says_what_a_build_skipped_and_release_mode_refuses_it(
    release: Path, publisher: ThrowawayKey, tmp_path: Path
) -> None:
    """A build that skipped its audit, or froze a native llama.cpp, used to verify as plainly
    as a release. Now the signed BUILD-INFO.json says so, verify prints it, and --release fails."""
    key = publisher.export(tmp_path / "publisher.asc")
    _with_build_info(
        release,
        publisher,
        version="1.0",
        commit="abc",
        smoke_test="passed",
        audit="skipped (--skip-audit)",
        llama_cpp="one CPU backend compiled for the build machine's CPU",
        portable=False,
        gpu_modules=[],
    )
    lenient = verify(release, key)
    assert lenient.returncode == 0, lenient.stderr
    assert "WARNING: not audited for known vulnerabilities" in lenient.stdout
    assert "not portable" in lenient.stdout and "not a full release build" in lenient.stdout
    strict = verify(release, key, "--release")
    assert strict.returncode == 1 and "not a release build" in strict.stderr

    _with_build_info(
        release,
        publisher,
        version="1.0",
        commit="abc",
        smoke_test="passed",
        audit="passed",
        llama_cpp="runtime dispatch",
        portable=True,
        gpu_modules=["vulkan"],
        llama_cpp_proven=[PROVEN_HOST, PROVEN_EMULATED],
    )
    full = verify(release, key, "--release")
    assert full.returncode == 0, full.stderr
    assert "a full release build (smoke-tested, audited, portable)" in full.stdout
    assert "llama.cpp self-test (emulated Nehalem, CPU variant sse42, host AMD EPYC): passed" in (
        full.stdout
    )


PROVEN_HOST = {"run_as": "host", "cpu_variant": "haswell", "passed": True, "host_cpu": "AMD EPYC"}
PROVEN_EMULATED = PROVEN_HOST | {"run_as": "emulated Nehalem", "cpu_variant": "sse42"}


def test_a_build_whose_llama_cpp_failed_or_was_never_proven_is_not_a_release(
    release: Path, publisher: ThrowawayKey, tmp_path: Path
) -> None:
    """Issue 33: no run had executed the CPU variants a release ships. BUILD-INFO.json now
    lists each self-test the smoke test ran; none, or one that failed, is no release."""
    key = publisher.export(tmp_path / "publisher.asc")
    full = {
        "version": "1.0",
        "commit": "abc",
        "smoke_test": "passed",
        "audit": "passed",
        "llama_cpp": "runtime dispatch",
        "portable": True,
        "gpu_modules": [],
    }
    for proven, shown in (
        ([], "llama.cpp self-test: not recorded"),
        ([PROVEN_HOST, PROVEN_EMULATED | {"passed": False}], "emulated Nehalem, CPU variant sse42"),
    ):
        _with_build_info(release, publisher, **full, llama_cpp_proven=proven)
        strict = verify(release, key, "--release")
        assert strict.returncode == 1 and shown in strict.stdout
        assert "llama.cpp was not proven on every CPU it was run on" in strict.stdout


def test_a_release_without_build_info_is_not_called_a_release(
    release: Path, publisher: ThrowawayKey, tmp_path: Path
) -> None:
    result = verify(release, publisher.export(tmp_path / "publisher.asc"), "--release")
    assert result.returncode == 1 and "no build information" in result.stderr
