"""`hearth remote add | remove | token | list | refresh`: model servers (engine/remote).

A team's GPU box runs an OpenAI-compatible server; each laptop adds it once:

    printf %s "$TOKEN" | hearth remote add https://gpu.example.org:8080/v1 --token-stdin
    hearth ask --model remote:gpu.example.org:8080/qwen2.5-7b "..."

Tokens are read from standard input (never an argument: it would sit in the shell history and
the process list) and kept in the OS keyring. IT fixes the list with the machine policy
(`remote.servers`, `remote.allowed`, `remote.allowed_hosts`); then `add` and `remove` say so.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.compose import Services

EXIT_OK, EXIT_ERROR = 0, 1


def add_parser(sub: Any) -> None:
    remote = sub.add_parser("remote", help="model servers on other computers (OpenAI-compatible)")
    rsub = remote.add_subparsers(dest="remote_command", metavar="SUBCOMMAND", required=True)
    p = rsub.add_parser("add", help="add a server by its API's base URL, and list its models")
    p.add_argument("url", help="e.g. https://gpu.example.org:8080/v1")
    p.add_argument("--token-stdin", action="store_true", help="read its token from stdin")
    p.add_argument(
        "--chroma",
        action="store_true",
        help="a Chroma server for shared document collections (`hearth docs attach`)",
    )
    p.set_defaults(func=_add)
    p = rsub.add_parser("remove", help="forget a server and its token")
    p.add_argument("url")
    p.add_argument("--chroma", action="store_true", help="a Chroma server")
    p.set_defaults(func=_remove)
    p = rsub.add_parser("token", help="set a server's token from stdin (empty: forget it)")
    p.add_argument("url")
    p.set_defaults(func=_token)
    for name, help_text, command in (
        ("list", "the servers and the models they offered when last asked", _list),
        ("refresh", "ask every server what it offers now", _refresh),
    ):
        p = rsub.add_parser(name, help=help_text)
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=command)


def _read_token() -> str:
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass("token: ").strip()
    return sys.stdin.read().strip()


def _add(args: argparse.Namespace, services: Services) -> int:
    from engine import remote

    settings = services.settings
    server = remote.servers.add(settings, args.url, "chroma" if args.chroma else "model")
    if args.token_stdin:
        remote.servers.set_token(server, _read_token())
    if args.chroma:
        print(f"added the Chroma server {server.url}; `hearth docs attach {server.url} NAME`")
        return EXIT_OK
    return _show(remote.refresh(settings, services.paths), as_json=False)


def _remove(args: argparse.Namespace, services: Services) -> int:
    from engine import remote

    server = remote.servers.remove(
        services.settings, args.url, "chroma" if args.chroma else "model"
    )
    if server is None:
        print(f"hearth: {args.url} is not a configured server", file=sys.stderr)
        return EXIT_ERROR
    remote.servers.forget_token(server)
    print(f"removed {server.url} and its token")
    return EXIT_OK


def _token(args: argparse.Namespace, services: Services) -> int:
    from engine import remote

    server = remote.servers.parse(args.url)
    value = _read_token()
    remote.servers.set_token(server, value or None)
    print(f"token for {server.key} {'kept in the keyring' if value else 'forgotten'}")
    return EXIT_OK


def _list(args: argparse.Namespace, services: Services) -> int:
    from engine import remote

    return _show(remote.cached(services.settings, services.paths), args.json, services)


def _refresh(args: argparse.Namespace, services: Services) -> int:
    from engine import remote

    return _show(remote.refresh(services.settings, services.paths), args.json, services)


def _show(statuses: list[Any], as_json: bool, services: Services | None = None) -> int:
    from engine import remote

    rows = []
    for s in statuses:
        refused = remote.servers.refusal(services.settings, s.server) if services else None
        rows.append(
            {
                "url": s.server.url,
                "models": [{"id": m.id, "context_length": m.context_length} for m in s.models],
                "problem": refused or s.problem,
                "checked": s.checked,
            }
        )
    if as_json:
        print(json.dumps(rows, indent=1))
        return EXIT_OK
    if not rows:
        print("no model servers configured (hearth remote add URL)")
    for row in rows:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(row["checked"]))
        print(f"{row['url']}  (asked {when if row['checked'] else 'never'})")
        if row["problem"]:
            print(f"  problem: {row['problem']}")
        for m in row["models"]:
            print(f"  {m['id']}")
    return EXIT_ERROR if any(r["problem"] for r in rows) else EXIT_OK
