"""`hearth packs keygen | export | verify | import`: offline model packs (engine/models/packs.py).

IT makes a signing key once (`keygen`), puts its public half in the machine policy
(`models.pack_keys`), exports packs on a connected machine and imports them on machines that
may not download. A key's passphrase, if any, comes from $HEARTH_PACK_KEY_PASSPHRASE.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.units import size_text

if TYPE_CHECKING:
    from app.compose import Services

EXIT_OK, EXIT_ERROR = 0, 1
PASSPHRASE_ENV = "HEARTH_PACK_KEY_PASSPHRASE"


def add_parser(sub: Any) -> None:
    packs = sub.add_parser("packs", help="offline model packs: signed folders of models")
    psub = packs.add_subparsers(dest="packs_command", metavar="SUBCOMMAND", required=True)
    p = psub.add_parser("keygen", help="make a pack signing key (private key file + public key)")
    p.add_argument("key_file", type=Path, help="where to write the private key (PEM)")
    p.set_defaults(func=_keygen)
    p = psub.add_parser("export", help="copy installed models into a new signed pack")
    p.add_argument("models", nargs="+", help="installed model ids (`hearth models list`)")
    p.add_argument("--to", type=Path, required=True, help="a new or empty folder")
    p.add_argument("--key", type=Path, required=True, help="private key from `packs keygen`")
    p.set_defaults(func=_export)
    for name, help_text, command in (
        ("verify", "check a pack's signature and every file; install nothing", _verify),
        ("import", "verify a pack, then install its models", _import),
    ):
        p = psub.add_parser(name, help=help_text)
        p.set_defaults(func=command)
        p.add_argument("folder", type=Path)
        p.add_argument(
            "--trust",
            action="append",
            default=[],
            metavar="PUBLIC-KEY",
            help="also trust this key (ed25519:…) for this run, unless the "
            "machine policy sets the trusted keys",
        )
        p.add_argument("--json", action="store_true")


def _passphrase() -> bytes | None:
    value = os.environ.get(PASSPHRASE_ENV)
    return value.encode() if value else None


def _progress(event: Any) -> None:
    if sys.stderr.isatty():
        print(
            f"\r{event.stage} {event.done / max(event.total, 1):6.1%} {event.file:<50.50}",
            end="",
            file=sys.stderr,
        )


def _keygen(args: argparse.Namespace, services: Services) -> int:
    from engine import models

    if args.key_file.exists():
        print(f"hearth: {args.key_file} exists; not overwriting a key", file=sys.stderr)
        return EXIT_ERROR
    key = models.new_pack_key()
    args.key_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(args.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(models.pack_key_pem(key, _passphrase()))
    public = models.pack_public_key(key)
    print(public)
    protection = "" if _passphrase() else f"; no passphrase, set {PASSPHRASE_ENV} for one"
    print(
        f"private key: {args.key_file} (keep it secret{protection})\n"
        f'trust it on managed machines with the policy setting models.pack_keys: ["{public}"]',
        file=sys.stderr,
    )
    return EXIT_OK


def _export(args: argparse.Namespace, services: Services) -> int:
    from engine import models

    key = models.load_pack_key(args.key, _passphrase())
    done = None
    for event in models.export_pack(args.models, args.to, services.paths, key):
        if isinstance(event, models.PackExported):
            done = event
        else:
            _progress(event)
    assert done is not None
    if sys.stderr.isatty():
        print(file=sys.stderr)
    pack = done.pack
    print(
        f"pack written to {pack.folder}: {len(pack.files)} models, "
        f"{size_text(pack.total_bytes)}, signed by key {models.pack_key_id(pack.signer)}"
    )
    return EXIT_OK


def _checked(args: argparse.Namespace, services: Services, install: bool) -> Any:
    from engine import models

    events: Iterable[Any]
    if install:
        events = models.import_pack(args.folder, services.paths, services.settings, args.trust)
    else:
        pack = models.read_pack(args.folder, models.pack_keys_for(services.settings, args.trust))
        events = itertools.chain(models.verify_pack_files(pack, services.settings), [pack])
    result = None
    for event in events:
        if isinstance(event, models.PackProgress):
            _progress(event)
        else:
            result = event
    if sys.stderr.isatty():
        print(file=sys.stderr)
    return result


def _verify(args: argparse.Namespace, services: Services) -> int:
    from engine import models

    pack = _checked(args, services, install=False)
    if args.json:
        json.dump(pack.as_dict() | {"verified": True}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    print(
        f"pack OK: signed by key {models.pack_key_id(pack.signer)} on {pack.created}; "
        f"every file matches its SHA-256"
    )
    for f in pack.files:
        print(f"  {f.file}  {size_text(f.size)}  {f.sha256}")
    return EXIT_OK


def _import(args: argparse.Namespace, services: Services) -> int:
    done = _checked(args, services, install=True)
    if args.json:
        json.dump(
            {
                "pack": done.pack.as_dict(),
                "installed": [m.as_dict() for m in done.installed],
                "already_installed": list(done.already_installed),
            },
            sys.stdout,
            indent=2,
        )
        sys.stdout.write("\n")
        return EXIT_OK
    for m in done.installed:
        print(f"installed {m.id}: {m.path}")
    for model_id in done.already_installed:
        print(f"already installed: {model_id}")
    return EXIT_OK
