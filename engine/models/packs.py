"""Offline model packs: model files, their catalog entries and a signed SHA-256 manifest in one
folder, for machines that may not download (a USB stick, a file share, an air-gapped site).

    PACK/hearth-pack.json       the manifest: every file's name, size, SHA-256, catalog entry
    PACK/hearth-pack.json.sig   Ed25519 signature of the manifest's exact bytes, base64
    PACK/models/NAME.gguf

Trust: a pack is accepted only if its manifest is signed by a key in `models.pack_keys`
(usually machine policy) or one the user names for that import; when the policy locks the list,
only the policy's keys count. Keys are written `ed25519:<base64 of the 32-byte public key>`.

Import checks the signature, the manifest, every file's size and SHA-256, and the policy's
allowed checksums before it installs anything. It then copies each file to a temporary name,
hashing again as it copies (the stick can change between the two reads), and only when every
copy matches are they renamed into the models folder. Export writes the manifest last, so an
interrupted export is not a pack.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import __version__, files, gguf
from engine.errors import ModelNotFound, PackError
from engine.models import access, bundled, catalog, registry
from engine.paths import DataPaths
from engine.settings import Settings

if TYPE_CHECKING:  # cryptography loads when a pack is used, not when Hearth starts
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

MANIFEST = "hearth-pack.json"
SIGNATURE = "hearth-pack.json.sig"
FORMAT = "hearth-model-pack"
KEY_PREFIX = "ed25519:"
MAX_MANIFEST_BYTES = 1024 * 1024
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}\.gguf$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


# -- keys ---------------------------------------------------------------------------------


def new_pack_key() -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate()


def pack_key_pem(key: Ed25519PrivateKey, passphrase: bytes | None = None) -> bytes:
    from cryptography.hazmat.primitives import serialization

    encryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def load_pack_key(path: Path, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=passphrase)
    except (OSError, ValueError, TypeError) as exc:
        raise PackError(f"The signing key “{path}” could not be read.", str(exc)) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise PackError(f"“{path}” is not an Ed25519 key; make one with `hearth packs keygen`.")
    return key


def pack_public_key(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return KEY_PREFIX + base64.b64encode(raw).decode("ascii")


def parse_pack_public_key(text: str) -> Ed25519PublicKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    text = text.strip()
    if not text.startswith(KEY_PREFIX):
        raise PackError(f"“{text[:40]}” is not a pack key (they start with “{KEY_PREFIX}”).")
    try:
        raw = base64.b64decode(text[len(KEY_PREFIX) :], validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        raise PackError(f"The pack key “{text[:40]}…” is damaged.") from None


def pack_key_id(text: str) -> str:
    """A short name for a public key, for people and logs."""
    return hashlib.sha256(text.strip().encode("ascii")).hexdigest()[:16]


def trusted_pack_keys(
    configured: Sequence[str], extra: Sequence[str] = (), locked_reason: str | None = None
) -> list[str]:
    """The keys a pack may be signed by: the configured ones, plus `extra` unless the list
    is locked by policy (then naming another key is refused, not ignored)."""
    if extra and locked_reason is not None:
        raise PackError(
            f"Your organisation decides which model packs this computer trusts: {locked_reason}"
        )
    keys = [k.strip() for k in [*configured, *extra] if k.strip()]
    for k in keys:
        parse_pack_public_key(k)
    return list(dict.fromkeys(keys))


def pack_keys_for(settings: Settings, extra: Sequence[str] = ()) -> list[str]:
    """trusted_pack_keys() for this installation's settings and policy."""
    return trusted_pack_keys(
        settings.get("models.pack_keys"), extra, settings.locked.get("models.pack_keys")
    )


# -- progress events -------------------------------------------------------------------------


@dataclass(frozen=True)
class PackProgress:
    stage: str  # "copying", "checking", "installing"
    file: str
    done: int  # bytes, over every file of the stage
    total: int


@dataclass(frozen=True)
class PackFile:
    file: str  # "models/NAME.gguf", relative to the pack
    size: int
    sha256: str
    model_id: str
    name: str
    catalog_entry: dict[str, Any] | None


@dataclass(frozen=True)
class Pack:
    folder: Path
    files: tuple[PackFile, ...]
    signer: str  # the public key that signed it
    created: str
    created_by: str

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def as_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "signer": self.signer,
            "signer_id": pack_key_id(self.signer),
            "created": self.created,
            "created_by": self.created_by,
            "total_bytes": self.total_bytes,
            "models": [
                {
                    "file": f.file,
                    "size": f.size,
                    "sha256": f.sha256,
                    "id": f.model_id,
                    "name": f.name,
                }
                for f in self.files
            ],
        }


@dataclass(frozen=True)
class PackExported:
    pack: Pack


@dataclass(frozen=True)
class PackImported:
    pack: Pack
    installed: tuple[registry.InstalledModel, ...]
    already_installed: tuple[str, ...]  # ids of models whose exact file was already here


# -- export ---------------------------------------------------------------------------------


def export_pack(
    model_ids: Sequence[str], dest: Path, paths: DataPaths, key: Ed25519PrivateKey
) -> Iterator[PackProgress | PackExported]:
    """Copy installed models into a new pack at `dest` (which must be empty or absent), then
    write and sign the manifest."""
    if not model_ids:
        raise PackError("Name at least one model to put in the pack.")
    chosen: list[registry.InstalledModel] = []
    for model_id in dict.fromkeys(model_ids):
        model = registry.find(model_id, paths)
        if model is None:
            raise ModelNotFound(f"No installed model is called “{model_id}”.")
        if model.source == "bundled":
            raise PackError(
                f"“{model_id}” is bundled with every Hearth install; it does not need a pack."
            )
        if model.problem is not None:
            raise PackError(f"“{model_id}” cannot be packed: {model.problem}")
        chosen.append(model)
    dest = dest.expanduser()
    if dest.exists() and any(dest.iterdir()):
        raise PackError(f"“{dest}” is not empty; choose a new or empty folder for the pack.")
    total = sum(m.path.stat().st_size for m in chosen)
    files.check_space(dest, total, total)
    (dest / "models").mkdir(parents=True, exist_ok=True)

    known = catalog.load()
    entries: list[PackFile] = []
    used: set[str] = set()
    done = 0
    for model in chosen:
        name = _pack_file_name(model.path.name, used)
        target = dest / "models" / name
        digest = hashlib.sha256()
        for copied in files.copy(model.path, target, digest):
            yield PackProgress("copying", name, done + copied, total)
        done += target.stat().st_size
        sha = digest.hexdigest()
        entry = known.find(model.catalog_id) if model.catalog_id else known.by_sha256(sha)
        entries.append(
            PackFile(
                file=f"models/{name}",
                size=target.stat().st_size,
                sha256=sha,
                model_id=model.id,
                name=registry.display_name(model.id),
                catalog_entry=entry.as_dict()
                if entry is not None and entry.sha256 in (None, sha)
                else None,
            )
        )

    manifest = {
        "format": FORMAT,
        "version": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "created_by": f"Hearth {__version__}",
        "models": [
            {
                "file": e.file,
                "size": e.size,
                "sha256": e.sha256,
                "id": e.model_id,
                "name": e.name,
                "catalog_entry": e.catalog_entry,
            }
            for e in entries
        ],
    }
    data = (json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
    signature = base64.b64encode(key.sign(data)) + b"\n"
    files.write_atomic(dest / SIGNATURE, signature)
    files.write_atomic(dest / MANIFEST, data)  # last: without it, the folder is not a pack
    yield PackExported(read_pack(dest, [pack_public_key(key)]))


def _pack_file_name(name: str, used: set[str]) -> str:
    """A plain, unique name for the pack (import accepts nothing else)."""
    stem = registry.slug(Path(name).stem)
    candidate, n = f"{stem}.gguf", 2
    while candidate in used:
        candidate, n = f"{stem}-{n}.gguf", n + 1
    used.add(candidate)
    return candidate


# -- reading and verifying ------------------------------------------------------------------


def read_pack(folder: Path, keys: Sequence[str]) -> Pack:
    """The pack's manifest, after checking its signature against `keys` and its structure.
    Does not read the model files (verify_pack_files does)."""
    from cryptography.exceptions import InvalidSignature

    folder = folder.expanduser()
    manifest_path, sig_path = folder / MANIFEST, folder / SIGNATURE
    if not manifest_path.is_file():
        raise PackError(f"“{folder}” is not a complete model pack: it has no {MANIFEST}.")
    if manifest_path.stat().st_size > MAX_MANIFEST_BYTES:
        raise PackError(f"The pack manifest in “{folder}” is too large to be genuine.")
    data = manifest_path.read_bytes()
    try:
        signature = base64.b64decode(sig_path.read_bytes().strip(), validate=True)
    except FileNotFoundError:
        raise PackError(
            f"The model pack in “{folder}” is not signed ({SIGNATURE} is "
            "missing); it cannot be trusted."
        ) from None
    except binascii.Error:
        raise PackError(f"The signature of the model pack in “{folder}” is damaged.") from None
    if not keys:
        raise PackError(
            "No model-pack signing key is trusted on this computer. Your IT "
            "department sets them (models.pack_keys), or name the publisher's "
            "key for this import."
        )
    signer = None
    for text in keys:
        try:
            parse_pack_public_key(text).verify(signature, data)
            signer = text
            break
        except InvalidSignature:
            continue
    if signer is None:
        raise PackError(
            f"The model pack in “{folder}” is not signed by a trusted key: it was "
            "changed after signing, or signed by someone else. Nothing was "
            "installed."
        )
    try:
        doc = json.loads(data.decode("utf-8"))
        if doc.get("format") != FORMAT or doc.get("version") != 1:
            raise ValueError(f"format {doc.get('format')!r} version {doc.get('version')!r}")
        files = tuple(_pack_file(raw) for raw in doc["models"])
        if not files:
            raise ValueError("no models")
        if len({f.file.lower() for f in files}) != len(files):
            raise ValueError("a file is listed twice")
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        raise PackError(f"The pack manifest in “{folder}” is not valid.", str(exc)) from None
    return Pack(folder, files, signer, str(doc.get("created", "")), str(doc.get("created_by", "")))


def _pack_file(raw: Any) -> PackFile:
    file, size, sha = raw["file"], raw["size"], raw["sha256"]
    if (
        not isinstance(file, str)
        or not file.startswith("models/")
        or not _SAFE_NAME.match(file[len("models/") :])
    ):
        raise ValueError(f"unsafe or unexpected file name {file!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValueError(f"bad size for {file}")
    if not isinstance(sha, str) or not _SHA256.match(sha):
        raise ValueError(f"bad sha256 for {file}")
    entry = raw.get("catalog_entry")
    return PackFile(
        file,
        size,
        sha,
        str(raw.get("id") or Path(file).stem),
        str(raw.get("name") or Path(file).stem),
        entry if isinstance(entry, dict) else None,
    )


def verify_pack_files(pack: Pack, settings: Settings) -> Iterator[PackProgress]:
    """Every file allowed by the policy, present, a plain file, of the listed size and
    SHA-256; raises ModelNotAllowed or PackError at the first that is not."""
    for f in pack.files:
        access.refuse_unlisted(f.sha256, settings, f.name, " in the pack, so nothing was installed")
    done = 0
    for f in pack.files:
        path = pack.folder / f.file
        if path.is_symlink() or not path.is_file():
            raise PackError(f"The pack is missing “{f.file}”. Nothing was installed.")
        if path.stat().st_size != f.size:
            raise PackError(
                f"“{f.file}” in the pack is not the file that was signed (its size "
                "differs). Nothing was installed."
            )
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            while block := fh.read(files.BLOCK):
                digest.update(block)
                done += len(block)
                yield PackProgress("checking", f.file, done, pack.total_bytes)
        if digest.hexdigest() != f.sha256:
            raise PackError(
                f"“{f.file}” in the pack is not the file that was signed (its "
                "SHA-256 checksum differs). Nothing was installed."
            )


# -- import ---------------------------------------------------------------------------------


def import_pack(
    folder: Path, paths: DataPaths, settings: Settings, extra_keys: Sequence[str] = ()
) -> Iterator[PackProgress | PackImported]:
    """Verify the whole pack (signed by a key `pack_keys_for(settings, extra_keys)` trusts, every
    model allowed by the policy), then install its models: all of them, or none."""
    pack = read_pack(folder, pack_keys_for(settings, extra_keys))
    yield from verify_pack_files(pack, settings)

    records = registry.Registry(paths)
    present = {
        rec.get("sha256") for rec in records.entries().values() if Path(rec["path"]).is_file()
    } | {m.sha256 for m in bundled.ALL}
    wanted = [f for f in pack.files if f.sha256 not in present]
    already = tuple(f.model_id for f in pack.files if f.sha256 in present)
    total = sum(f.size for f in wanted)
    files.check_space(paths.models, total, total)

    staged: list[tuple[PackFile, Path]] = []
    try:
        done = 0
        for f in wanted:
            tmp = paths.models / f".{Path(f.file).name}.from-pack"
            staged.append((f, tmp))
            digest = hashlib.sha256()
            for copied in files.copy(pack.folder / f.file, tmp, digest):
                yield PackProgress("installing", f.file, done + copied, total)
            done += f.size
            if digest.hexdigest() != f.sha256:
                raise PackError(
                    f"“{f.file}” changed while it was being copied from the pack. "
                    "Nothing was installed."
                )
            gguf.inspect(tmp)  # a signed pack can still carry a file llama.cpp must not open
        installed = []
        known = catalog.load()
        for f, tmp in staged:
            target = files.unused_path(paths.models, Path(f.file).name)
            os.replace(tmp, target)
            local = known.find(f.catalog_entry["id"]) if f.catalog_entry else None
            model_id = records.put(
                registry.slug(f.model_id),
                {
                    "path": str(target),
                    "source": "pack",
                    "sha256": f.sha256,
                    "catalog_id": local.id
                    if local is not None and local.sha256 in (None, f.sha256)
                    else None,
                    "pack_signer": pack_key_id(pack.signer),
                    "pack_created": pack.created,
                },
            )
            installed.append(
                registry.InstalledModel(
                    model_id, target, "pack", gguf.inspect(target), sha256=f.sha256
                )
            )
    finally:
        for _f, tmp in staged:
            tmp.unlink(missing_ok=True)
    yield PackImported(pack, tuple(installed), already)
