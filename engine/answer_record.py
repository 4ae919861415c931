"""One answer as a record to keep or hand over: the question, the answer, the model (id, name,
file SHA-256), the sampling settings, the Hearth and llama-cpp-python versions, when it was
asked and answered, and every source with its document's path, SHA-256, page, character span
and exact quote; linked to the answer's line in the audit trail (`engine.answer_audit`).

`verify` re-checks a record later: that its line is still in the audit trail unchanged, that
its question, answer and quotes are what was answered (the trail's keyed digest, checkable on
the installation that recorded it), and for each source whether the document still has that
hash and, when it changed, whether the quote is still at its span, elsewhere, or gone.
"""

from __future__ import annotations

import hashlib
import html
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import answer_audit
from engine.audit import line_hash
from engine.chats import ChatStore
from engine.errors import HearthError
from engine.paths import DataPaths

FORMAT = "hearth-answer-record/1"


class RecordError(HearthError):
    pass


def build(paths: DataPaths, chats: ChatStore, message_id: int) -> dict[str, Any]:
    """The record of assistant message `message_id` (its question is the message before it)."""
    answer = chats.message(message_id)
    if answer.role != "assistant":
        raise RecordError(f"Message {message_id} is a question; export its answer instead.")
    earlier = [m for m in chats.messages(answer.chat_id) if m.seq < answer.seq]
    question = next((m for m in reversed(earlier) if m.role == "user"), None)
    line, audited = _audit_line(paths, message_id)
    return compose(
        question=question.content if question else "",
        asked=question.created if question else None,
        answer=answer.content,
        status=answer.status,
        sources=answer.sources,
        grounding=answer.grounding,
        model_name=answer.model,
        audited=audited,
        line=line,
        chat=answer.chat_id,
        message=message_id,
    )


def compose(
    *,
    question: str,
    asked: float | None,
    answer: str,
    status: str,
    sources: list[dict[str, Any]],
    grounding: dict[str, Any] | None,
    model_name: str | None,
    audited: dict[str, Any] | None,
    line: bytes | None,
    chat: int | None = None,
    message: int | None = None,
) -> dict[str, Any]:
    """A record from its parts: the answer as shown, and its audit-trail record and line."""
    return {
        "format": FORMAT,
        "exported": _iso(time.time()),
        "chat": chat,
        "message": message,
        "question": question,
        "asked": _iso(asked) if asked else None,
        "answer": answer,
        "answered": _iso(audited["time"]) if audited else None,
        "grounding": grounding,
        "status": status,
        "model": {
            "id": audited.get("model") if audited else None,
            "name": model_name,
            "sha256": audited.get("model_sha256") if audited else None,
        },
        "sampling": audited.get("sampling") if audited else None,
        "hearth": audited.get("hearth") if audited else None,
        "llama_cpp_python": audited.get("llama_cpp_python") if audited else None,
        "sources": [
            {
                "n": s.get("n"),
                "path": s.get("path"),
                "file": Path(str(s.get("path"))).name,
                "document_sha256": s.get("document_sha256"),
                "page": s.get("page"),
                "char_start": s.get("char_start"),
                "char_end": s.get("char_end"),
                "lines": [s.get("line_start"), s.get("line_end")],
                "ocr": bool(s.get("ocr")),
                "quote": s.get("quote"),
            }
            for s in sources
        ],
        "audit": {
            "trail": answer_audit.LOG_NAME,
            "seq": audited["seq"],
            "line_sha256": line_hash(line),
        }
        if audited and line
        else None,
    }


def write(paths: DataPaths, chats: ChatStore, message_id: int, path: Path) -> dict[str, Any]:
    """Write the record to `path`: printable HTML for .html/.htm, JSON otherwise."""
    record = build(paths, chats, message_id)
    if path.suffix.lower() in (".html", ".htm"):
        path.write_text(to_html(record), encoding="utf-8")
    else:
        path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return record


def _audit_line(paths: DataPaths, message_id: int) -> tuple[bytes | None, dict[str, Any] | None]:
    for line in reversed(list(answer_audit.trail(paths).lines())):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("kind") == "answer" and record.get("message") == message_id:
            return line, record
    return None, None


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(t))


# -- checking later ---------------------------------------------------------------------------


@dataclass
class Check:
    ok: bool
    what: str


@dataclass
class Verification:
    record: Check
    sources: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.record.ok and all(c.ok for c in self.sources)


def verify(paths: DataPaths, record: dict[str, Any]) -> Verification:
    if record.get("format") != FORMAT:
        raise RecordError(f"Not a Hearth answer record ({FORMAT}).")
    return Verification(_check_record(paths, record), [_check_source(s) for s in record["sources"]])


def _check_record(paths: DataPaths, record: dict[str, Any]) -> Check:
    link = record.get("audit")
    if not link:
        return Check(False, "the answer was not in the audit trail when this record was made")
    line = next(
        (
            raw
            for raw in answer_audit.trail(paths).lines()
            if _field(raw, "seq") == link["seq"] and _field(raw, "kind") == "answer"
        ),
        None,
    )
    if line is None:
        return Check(False, f"audit record {link['seq']} is no longer in this installation's trail")
    if line_hash(line) != link["line_sha256"]:
        return Check(False, f"audit record {link['seq']} is not the one this record was made from")
    audited = json.loads(line)
    if not answer_audit.key_exists(paths):
        return Check(
            True,
            f"audit record {link['seq']} is intact; the text cannot be checked here (the key is "
            "on the installation that recorded it)",
        )
    digest = answer_audit.content_digest(
        paths, record["question"], record["answer"], record["sources"]
    )
    if digest != audited.get("content_hmac"):
        return Check(
            False,
            "the question, the answer or a quote differs from what was answered "
            f"(audit record {link['seq']})",
        )
    return Check(True, f"question, answer and quotes are as answered (audit record {link['seq']})")


def _field(line: bytes, name: str) -> Any:
    try:
        return json.loads(line).get(name)
    except (ValueError, AttributeError):
        return None


def _check_source(source: dict[str, Any]) -> Check:
    label = f"[{source.get('n')}] {source.get('file')}"
    path = Path(str(source.get("path")))
    try:
        data = path.read_bytes()
    except OSError as exc:
        return Check(False, f"{label}: cannot be read now ({exc.strerror or exc})")
    if hashlib.sha256(data).hexdigest() == source.get("document_sha256"):
        return Check(True, f"{label}: unchanged (same SHA-256)")
    from engine.documents import loaders

    kind = loaders.kind_for(path)
    try:
        text = loaders.load(path, kind).text if kind else data.decode("utf-8", "replace")
    except (loaders.Skip, loaders.Fail) as exc:
        return Check(False, f"{label}: the file changed and can no longer be read ({exc})")
    quote, start, end = source.get("quote") or "", source.get("char_start"), source.get("char_end")
    if isinstance(start, int) and isinstance(end, int) and text[start:end] == quote:
        return Check(False, f"{label}: the file changed; the quote is still at its span")
    at = text.find(quote) if quote else -1
    if at >= 0:
        return Check(
            False,
            f"{label}: the file changed; the quote moved to characters {at}–{at + len(quote)}",
        )
    return Check(False, f"{label}: the file changed and the quote is no longer in it")


# -- printable --------------------------------------------------------------------------------


def to_html(record: dict[str, Any]) -> str:
    """A page to print or save as PDF from a browser: everything in the JSON, laid out."""
    e = html.escape
    model = record["model"]
    rows = [
        ("Asked", record.get("asked")),
        ("Answered", record.get("answered")),
        ("Model", f"{model.get('name') or model.get('id')} · SHA-256 {model.get('sha256')}"),
        (
            "Sampling",
            ", ".join(
                f"{k} {v}"
                for k, v in sorted((record.get("sampling") or {}).items())
                if v not in (None, [], ())
            ),
        ),
        ("Hearth", f"{record.get('hearth')} · llama-cpp-python {record.get('llama_cpp_python')}"),
        (
            "Audit trail",
            f"{record['audit']['trail']} record {record['audit']['seq']} · line SHA-256 "
            f"{record['audit']['line_sha256']}"
            if record.get("audit")
            else "not recorded",
        ),
        ("Exported", record.get("exported")),
    ]
    if record.get("grounding"):
        rows.insert(0, ("Checked against the sources", record["grounding"].get("summary")))
    sources = "".join(
        f"<li><b>[{s['n']}] {e(str(s['file']))}</b>"
        + (f", page {s['page']}" if s.get("page") else "")
        + (" · OCR" if s.get("ocr") else "")
        + f", characters {s.get('char_start')}–{s.get('char_end')}<br><small>{e(str(s['path']))}"
        f" · SHA-256 {e(str(s.get('document_sha256')))}</small>"
        f"<blockquote>{e(str(s.get('quote') or ''))}</blockquote></li>"
        for s in record["sources"]
    )
    meta = "".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in rows)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Answer record</title><style>"
        "body{font-family:sans-serif;max-width:50em;margin:2em auto;line-height:1.45}"
        "th{text-align:left;padding-right:1em;vertical-align:top}td{word-break:break-all}"
        "blockquote{border-left:3px solid #888;margin:.4em 0;padding-left:.8em;white-space:"
        "pre-wrap}</style></head><body>"
        f"<h1>Answer record</h1><h2>Question</h2><p>{e(record['question'])}</p>"
        f"<h2>Answer</h2><p style='white-space:pre-wrap'>{e(record['answer'])}</p>"
        f"<h2>Sources</h2><ol style='list-style:none;padding:0'>{sources or '<li>none</li>'}</ol>"
        f"<h2>How it was made</h2><table>{meta}</table>"
        "<p><small>Check it later with <code>hearth record verify</code> on the JSON record."
        "</small></p></body></html>"
    )
