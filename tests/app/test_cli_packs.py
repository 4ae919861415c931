"""`hearth packs` end to end, as IT would use it: make a key, export a model on one install,
verify and import it on another, and see a machine policy decide which keys count."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.gguf_tools import with_string_metadata

HEARTH = [sys.executable, "-m", "app.cli"]


def hearth(home: Path, *args: str, policy: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        HEARTH_HOME=str(home),
        HEARTH_POLICY=str(policy or home / "no-policy.json"),
    )
    return subprocess.run([*HEARTH, *args], capture_output=True, text=True, timeout=300, env=env)


def test_keygen_export_verify_import_and_policy_keys(tmp_path: Path, bundled_gguf: Path) -> None:
    office, site = tmp_path / "office", tmp_path / "site"
    model = with_string_metadata(
        bundled_gguf, tmp_path / "contracts.gguf", "general.name", "Contracts helper"
    )
    assert hearth(office, "models", "import", str(model)).returncode == 0

    key_file = tmp_path / "it" / "pack.key"
    made = hearth(office, "packs", "keygen", str(key_file))
    assert made.returncode == 0, made.stderr
    public = made.stdout.strip()
    assert public.startswith("ed25519:")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert hearth(office, "packs", "keygen", str(key_file)).returncode != 0, "no overwrite"

    pack = tmp_path / "usb" / "pack"
    out = hearth(office, "packs", "export", "contracts", "--to", str(pack), "--key", str(key_file))
    assert out.returncode == 0, out.stderr
    assert "1 models" in out.stdout

    untrusted = hearth(site, "packs", "verify", str(pack))
    assert untrusted.returncode == 1 and "No model-pack signing key is trusted" in untrusted.stderr
    verified = hearth(site, "packs", "verify", str(pack), "--trust", public, "--json")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["verified"] is True
    assert not (site / "data" / "models").exists() or not list(
        (site / "data" / "models").glob("*.gguf")
    ), "verify installs nothing"

    # A policy that trusts another key: --trust is refused, and the pack is not accepted.
    policy = tmp_path / "policy.json"
    policy.write_text(
        json.dumps(
            {
                "reason": "Set by IT.",
                "settings": {"models.pack_keys": ["ed25519:" + "A" * 43 + "="]},
            }
        )
    )
    locked = hearth(site, "packs", "import", str(pack), "--trust", public, policy=policy)
    assert locked.returncode == 1 and "Your organisation decides" in locked.stderr
    refused = hearth(site, "packs", "import", str(pack), policy=policy)
    assert refused.returncode == 1 and "not signed by a trusted key" in refused.stderr

    # The policy that trusts IT's key: the import works without --trust.
    policy.write_text(
        json.dumps({"reason": "Set by IT.", "settings": {"models.pack_keys": [public]}})
    )
    imported = hearth(site, "packs", "import", str(pack), policy=policy)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.startswith("installed contracts")
    listed = json.loads(hearth(site, "models", "list", "--json", policy=policy).stdout)
    entry = next(m for m in listed["installed"] if m["id"] == "contracts")
    assert entry["usable"] and entry["source"] == "pack"
