"""`hearth chats list | export`: the chat history the window keeps, from the terminal."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.compose import Services

EXIT_OK = 0


def add_parser(sub: Any) -> None:
    chats = sub.add_parser("chats", help="the window's chat history: list and export")
    csub = chats.add_subparsers(dest="chats_command", metavar="SUBCOMMAND", required=True)
    p = csub.add_parser("list", help="chats, newest first")
    p.add_argument("search", nargs="?", default="", help="only chats whose title or text has it")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_list)
    p = csub.add_parser("export", help="one chat with its sources, as Markdown or JSON")
    p.add_argument("id", type=int)
    p.add_argument("--format", choices=("md", "json"), help="default: from -o's suffix, else md")
    p.add_argument("-o", "--output", type=Path, help="write to this file instead of stdout")
    p.set_defaults(func=_export)


def _list(args: argparse.Namespace, services: Services) -> int:
    chats = services.chats.chats(args.search)
    if args.json:
        json.dump(
            [c.__dict__ | {"collections": list(c.collections)} for c in chats], sys.stdout, indent=2
        )
        sys.stdout.write("\n")
        return EXIT_OK
    for c in chats:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(c.updated))
        print(f"{c.id:5}  {when}  {c.title}")
    return EXIT_OK


def _export(args: argparse.Namespace, services: Services) -> int:
    from engine import chat_export

    store = services.chats
    if args.output is not None:
        chat_export.write(store, args.id, args.output, args.format)
        print(f"Exported to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(chat_export.render(store.export(args.id), args.format or "md") + "\n")
    return EXIT_OK
