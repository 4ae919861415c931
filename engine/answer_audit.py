"""The answers' audit trail: one chained record (`engine.audit`) per question answered in a
Hearth chat (the window, `hearth chat`), by `hearth ask`, or from documents through the API,
in `logs/audit.jsonl`.

A record says when, where from, which chat and message (the text stays in the chat store, which
is encrypted when `privacy.encrypt_chats` is on), which model file (its SHA-256), which
collections, and for every source the document's path, its SHA-256 when it was read, page and
character span, the sampling settings and the versions of Hearth and llama-cpp-python. Never
the question, the answer or a passage: the log is readable by whoever reads the logs folder,
and content there would be a second, unencrypted copy. Instead `content_hmac` keys a digest of
them with a secret kept in the data folder, so an exported answer record
(`engine.answer_record`) can be checked against the trail on this installation.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
from collections.abc import Iterable
from typing import Any

from engine.audit import AuditTrail, apply_retention
from engine.paths import DataPaths

LOG_NAME = "audit.jsonl"
KEY_NAME = "audit-content.key"  # in the data folder, not beside the logs
log = logging.getLogger(__name__)


def trail(paths: DataPaths) -> AuditTrail:
    return AuditTrail(paths.logs / LOG_NAME)


def trails(paths: DataPaths) -> list[AuditTrail]:
    """Every chained trail Hearth keeps: answers, then the API server's requests."""
    from engine.api.audit import LOG_NAME as API_LOG

    return [trail(paths), AuditTrail(paths.logs / API_LOG)]


def record_answer(
    paths: DataPaths,
    *,
    via: str,
    model: str,
    status: str,
    question: str,
    answer: str,
    collections: Iterable[str] = (),
    sources: Iterable[dict[str, Any]] = (),
    sampling: dict[str, Any] | None = None,
    chat_id: int | None = None,
    message_id: int | None = None,
) -> dict[str, Any] | None:
    """Chain the record of one answer and return it. A failure to write (a full disk) is
    logged and gives None: the answer is already shown and saved, and losing it over the log
    would help nobody."""
    from importlib import metadata

    from engine import __version__, models

    sources = list(sources)
    installed = models.find(model, paths)
    try:
        llama = metadata.version("llama-cpp-python")
    except metadata.PackageNotFoundError:
        llama = None
    fields = {
        "via": via,
        "chat": chat_id,
        "message": message_id,
        "model": model,
        "model_sha256": installed.sha256 if installed is not None else None,
        "sampling": sampling,
        "hearth": __version__,
        "llama_cpp_python": llama,
        "status": status,
        "collections": list(collections),
        "sources": [
            {
                "n": s.get("n"),
                "path": s.get("path"),
                "sha256": s.get("document_sha256"),
                "page": s.get("page"),
                "chars": [s.get("char_start"), s.get("char_end")],
            }
            for s in sources
        ],
    }
    try:
        fields["content_hmac"] = content_digest(paths, question, answer, sources)
        return trail(paths).append("answer", **fields)
    except OSError as exc:
        log.error("answer not recorded in the audit trail: %s", exc)
        return None


def content_digest(
    paths: DataPaths, question: str, answer: str, sources: Iterable[dict[str, Any]]
) -> str:
    """HMAC-SHA256 of the question, the answer and the quotes, keyed by this installation's
    secret: it proves later that an exported record's text is what was answered, without
    putting the text, or a plain hash anyone could test guesses against, in the log."""
    body = json.dumps(
        {"question": question, "answer": answer, "quotes": [s.get("quote") for s in sources]},
        sort_keys=True,
        ensure_ascii=False,
    ).encode()
    return hmac.new(_key(paths), body, hashlib.sha256).hexdigest()


def key_exists(paths: DataPaths) -> bool:
    return (paths.data / KEY_NAME).exists()


def _key(paths: DataPaths) -> bytes:
    path = paths.data / KEY_NAME
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text(encoding="ascii").strip())


def apply_retention_days(paths: DataPaths, days: int) -> int:
    """Remove records older than `days` from every trail, each with a chained record of what
    went; 0 keeps them all."""
    return sum(apply_retention(t, days) for t in trails(paths))
