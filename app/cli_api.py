"""`hearth serve` and `hearth api token | log`: the local OpenAI-compatible API (engine/api).

`serve` loads the model first (so the first request does not wait for it and a bad model fails
here, not in a client), then serves until Ctrl-C or SIGTERM. It never prints the token: a
terminal's scrollback or a service's journal is no place for it; `hearth api token` shows it.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.compose import Services

EXIT_OK, EXIT_ERROR = 0, 1


def add_parser(sub: Any) -> None:
    serve = sub.add_parser("serve", help="run the local OpenAI-compatible API server")
    serve.add_argument(
        "--host",
        help="address to listen on (default: the api.host setting, "
        "127.0.0.1); others need the machine policy",
    )
    serve.add_argument("--port", type=int, help="TCP port (default: the api.port setting)")
    serve.add_argument(
        "--model",
        "-m",
        help="model to load at start (default: the default "
        "model); requests may name other installed ones",
    )
    serve.set_defaults(func=run_serve)
    api = sub.add_parser("api", help="the API server's token and audit log")
    asub = api.add_subparsers(dest="api_command", metavar="SUBCOMMAND", required=True)
    p = asub.add_parser("token", help="print the API token clients must send")
    p.add_argument(
        "--rotate",
        action="store_true",
        help="replace it with a new one; the old one stops working at once",
    )
    p.set_defaults(func=_token)
    p = asub.add_parser("log", help="recent API requests (no content is ever logged)")
    p.add_argument("-n", type=int, default=20, help="how many (default 20)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_log)


def run_serve(args: argparse.Namespace, services: Services) -> int:
    from engine import models
    from engine.api.server import check_bind

    server = services.api_server(host=args.host, port=args.port)
    check_bind(server.host, services.settings)  # refuse before spending time on the model
    # The model is looked up as a client's request would be: an installed id, never a path
    # that no client could then name.
    model = args.model or services.settings.get("model.default")
    load = server.backend.load_params(model)
    print(f"hearth: loading {models.display_name(model)}…", file=sys.stderr)
    services.runtime.load(load)
    url = server.start()
    print(
        f"Hearth API on {url}  (OpenAI-compatible; `hearth api token` prints the token)", flush=True
    )
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        print("hearth: stopping the API server", file=sys.stderr)
        server.stop()
    return EXIT_OK


def _token(args: argparse.Namespace, services: Services) -> int:
    from engine.api import token

    value = token.rotate(services.paths) if args.rotate else token.read_or_create(services.paths)
    print(value)
    if args.rotate:
        print("hearth: the previous token no longer works", file=sys.stderr)
    return EXIT_OK


def _log(args: argparse.Namespace, services: Services) -> int:
    from engine.api.audit import AuditLog

    entries = AuditLog(services.paths.logs).read(args.n)
    if args.json:
        json.dump(entries, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    for e in entries:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["time"]))
        tokens = (
            ""
            if e.get("completion_tokens") is None
            else f"  {e.get('prompt_tokens')}+{e.get('completion_tokens')} tokens"
        )
        print(
            f"{when}  {e['client']:15} {e['method']:4} {e['path']:22} {e['status']}  "
            f"{e['duration_ms']:6} ms  {e.get('model') or ''}{tokens}"
        )
    return EXIT_OK
