"""A chat written to a file the user chose: Markdown to read or share, JSON to process.
Answers keep their sources (file, page, exact quote), so an exported answer stays checkable."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from engine import files
from engine.chats import ChatStore
from engine.documents.citing import place
from engine.errors import HearthError

FORMATS = ("md", "json")


def markdown(data: dict[str, Any]) -> str:
    """`ChatStore.export()` data as Markdown."""
    chat = data["chat"]
    lines = [
        f"# {chat['title']}",
        "",
        f"_Exported from Hearth on {time.strftime('%Y-%m-%d %H:%M')}_",
        "",
    ]
    for m in data["messages"]:
        who = "You" if m["role"] == "user" else (m.get("model") or "Hearth")
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(m["created"]))
        status = "" if m["status"] == "done" else f" ({m['status']})"
        lines += [f"**{who}**, {when}{status}", "", m["content"], ""]
        if m.get("sources"):
            lines.append("Sources:")
            for s in m["sources"]:
                where = place(
                    s.get("page"), s.get("line_start"), s.get("line_end"), bool(s.get("ocr"))
                )
                quote = " ".join(str(s.get("quote", "")).split())
                lines.append(f"{s['n']}. {s.get('file') or s['path']}, {where}: “{quote}”")
            lines.append("")
    return "\n".join(lines)


def render(data: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, ensure_ascii=False, indent=2)
    if fmt == "md":
        return markdown(data)
    raise HearthError(f"Chats export as {' or '.join(FORMATS)}, not “{fmt}”.")


def write(store: ChatStore, chat_id: int, path: Path, fmt: str | None = None) -> Path:
    """Write the chat to `path`, replacing it whole; the format is `fmt` or follows the
    suffix (.json: JSON, anything else: Markdown)."""
    fmt = fmt or ("json" if path.suffix.lower() == ".json" else "md")
    text = render(store.export(chat_id), fmt)
    try:
        files.write_atomic(path, text)
    except OSError as exc:
        raise HearthError(
            f"The chat could not be written to {path}: {exc.strerror or exc}.", str(exc)
        ) from None
    return path
