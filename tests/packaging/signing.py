"""Throwaway signing keys for packaging tests: made per test, in a temporary GNUPGHOME."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path


class ThrowawayKey:
    """An ed25519 signing key with no passphrase, in its own keyring."""

    def __init__(self, home: Path, name: str = "Hearth Test Release") -> None:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.env = dict(os.environ, GNUPGHOME=str(home))
        self._gpg(
            "--quick-gen-key", f"{name} <release@example.invalid>", "ed25519", "sign", "never"
        )
        listing = self._gpg("--with-colons", "--list-secret-keys").stdout
        self.fingerprint = re.search(r"^fpr:+([0-9A-F]{40}):", listing, re.M).group(1)

    def _gpg(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "", *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )

    def export(self, path: Path) -> Path:
        path.write_text(self._gpg("--armor", "--export", self.fingerprint).stdout)
        return path

    def sign(self, path: Path) -> Path:
        self._gpg(
            "--yes",
            "--armor",
            "--detach-sign",
            "--local-user",
            self.fingerprint,
            "--output",
            f"{path}.asc",
            str(path),
        )
        return Path(f"{path}.asc")

    def close(self) -> None:
        subprocess.run(["gpgconf", "--kill", "all"], env=self.env, capture_output=True)


def write_sums(folder: Path, names: list[str]) -> Path:
    lines = [f"{hashlib.sha256((folder / n).read_bytes()).hexdigest()}  {n}" for n in names]
    sums = folder / "SHA256SUMS"
    sums.write_text("\n".join(lines) + "\n")
    return sums
