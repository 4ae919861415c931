"""packaging/windows/sign.sh Authenticode-signs real PE files with osslsigncode and verifies
them. The files are an .exe and a .dll built here with mingw-w64; the certificate is a code-
signing certificate from a throwaway CA made in the test. Tampering, another CA and an unsigned
file all fail `osslsigncode verify`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SIGN = ROOT / "packaging" / "windows" / "sign.sh"
MINGW = "x86_64-w64-mingw32-gcc"

HELLO = r"""
#include <stdio.h>
__declspec(dllexport) int hearth_answer(void) { return 42; }
int main(void) { printf("hello from a signed exe\n"); return 0; }
"""
LIB = "__declspec(dllexport) int hearth_add(int a, int b) { return a + b; }\n"


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    key, cert = folder / f"{name}.key", folder / f"{name}.pem"
    out = run(
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        key,
        "-out",
        cert,
        "-days",
        "2",
        "-subj",
        f"/CN={name}",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    assert out.returncode == 0, out.stderr
    return key, cert


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pki")
    ca_key, ca_cert = make_ca(d, "Hearth Test CA")
    _, other_ca = make_ca(d, "Some Other CA")
    ext = d / "codesign.ext"
    ext.write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=codeSigning\n"
    )
    steps = [
        (
            "openssl",
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            d / "signer.key",
            "-out",
            d / "signer.csr",
            "-subj",
            "/CN=Hearth Test Publisher/O=Hearth developers",
        ),
        (
            "openssl",
            "x509",
            "-req",
            "-in",
            d / "signer.csr",
            "-CA",
            ca_cert,
            "-CAkey",
            ca_key,
            "-CAcreateserial",
            "-out",
            d / "signer.pem",
            "-days",
            "2",
            "-extfile",
            ext,
        ),
        (
            "openssl",
            "pkcs12",
            "-export",
            "-inkey",
            d / "signer.key",
            "-in",
            d / "signer.pem",
            "-certfile",
            ca_cert,
            "-out",
            d / "signer.p12",
            "-passout",
            "file:" + str(d / "pw"),
        ),
    ]
    (d / "pw").write_text("correct horse")
    for step in steps:
        out = run(*step)
        assert out.returncode == 0, out.stderr
    return {"ca": ca_cert, "other_ca": other_ca, "p12": d / "signer.p12", "pw": d / "pw"}


@pytest.fixture
def pe_files(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "hello.c").write_text(HELLO)
    (tmp_path / "lib.c").write_text(LIB)
    app = tmp_path / "app"
    (app / "_internal").mkdir(parents=True)
    exe, dll = app / "hearth.exe", app / "_internal" / "hearthlib.dll"
    for args in (
        (MINGW, "-O2", "-o", exe, tmp_path / "hello.c"),
        (MINGW, "-O2", "-shared", "-o", dll, tmp_path / "lib.c"),
    ):
        out = run(*args)
        assert out.returncode == 0, out.stderr
    assert exe.read_bytes()[:2] == b"MZ" and dll.read_bytes()[:2] == b"MZ"
    (app / "_internal" / "readme.txt").write_text("not a PE file: left alone")
    return {"app": app, "exe": exe, "dll": dll}


def verify(path: Path, ca: Path) -> subprocess.CompletedProcess[str]:
    return run("osslsigncode", "verify", "-CAfile", ca, "-in", path)


def test_signs_every_pe_file_in_a_folder_and_each_verifies(
    pki: dict[str, Path], pe_files: dict[str, Path]
) -> None:
    for f in (pe_files["exe"], pe_files["dll"]):
        assert verify(f, pki["ca"]).returncode != 0, "unsigned files must not verify"

    out = run(
        SIGN,
        "--pkcs12",
        pki["p12"],
        "--password-file",
        pki["pw"],
        "--ca",
        pki["ca"],
        pe_files["app"],
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("signed and verified") == 2

    for f in (pe_files["exe"], pe_files["dll"]):
        ok = verify(f, pki["ca"])
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "Signature verification: ok" in ok.stdout
        assert "Hearth Test Publisher" in ok.stdout
        # Trusting another CA only: the same signature is rejected.
        assert verify(f, pki["other_ca"]).returncode != 0
    assert (pe_files["app"] / "_internal" / "readme.txt").read_text().startswith("not a PE")
    assert not list(pe_files["app"].rglob("*.signing*")), "no temporary files left behind"


def test_a_byte_changed_after_signing_fails_verification(
    pki: dict[str, Path], pe_files: dict[str, Path]
) -> None:
    exe = pe_files["exe"]
    # Without --ca the chain is checked against the system's roots, which do not know the test
    # CA: sign.sh signs, then refuses to call it done.
    untrusted = run(SIGN, "--pkcs12", pki["p12"], "--password-file", pki["pw"], exe)
    assert untrusted.returncode != 0 and "does not verify" in untrusted.stderr
    assert (
        run(
            SIGN, "--pkcs12", pki["p12"], "--password-file", pki["pw"], "--ca", pki["ca"], exe
        ).returncode
        == 0
    )
    data = bytearray(exe.read_bytes())
    text = data.find(b"hello from a signed exe")
    assert text > 0
    data[text] ^= 0x20  # one letter's case, inside the signed image
    exe.write_bytes(bytes(data))
    bad = verify(exe, pki["ca"])
    assert bad.returncode != 0
    assert "MISMATCH" in bad.stdout or "failed" in (bad.stdout + bad.stderr).lower()


def test_a_wrong_password_signs_nothing(
    pki: dict[str, Path], pe_files: dict[str, Path], tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("battery staple")
    before = pe_files["exe"].read_bytes()
    out = run(SIGN, "--pkcs12", pki["p12"], "--password-file", wrong, pe_files["exe"])
    assert out.returncode != 0
    assert "could not sign" in out.stderr
    assert pe_files["exe"].read_bytes() == before
