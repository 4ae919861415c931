"""`hearth audit verify | head | show | export`: the hash-chained audit trails (engine/audit.py)
of answers (`logs/audit.jsonl`) and API requests (`logs/api-audit.jsonl`). `hearth record
export | verify`: one answer as a record to keep (engine/answer_record.py), checked later.

`verify` exits 0 when every chain holds (and each noted head is still in it), 1 when not,
naming the line where each breaks. `head` prints what to note elsewhere so that a later
`verify --head` also proves nothing was cut from the end or rewritten.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.compose import Services

EXIT_OK, EXIT_ERROR = 0, 1


def add_parser(sub: Any) -> None:
    audit = sub.add_parser("audit", help="check and export the audit trails (answers, API)")
    asub = audit.add_subparsers(dest="audit_command", metavar="SUBCOMMAND", required=True)
    p = asub.add_parser("verify", help="check that no record was edited, removed or reordered")
    p.add_argument(
        "--head",
        action="append",
        default=[],
        metavar="NAME=SEQ:SHA256",
        help="a head noted earlier (`hearth audit head`): it must still be in that trail",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_verify)
    p = asub.add_parser("head", help="the newest record of each trail, to note elsewhere")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_head)
    p = asub.add_parser("show", help="recent answer records (no content is ever in them)")
    p.add_argument("-n", type=int, default=20, help="how many (default 20)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_show)
    p = asub.add_parser("export", help="copy the trails and a verification report to a folder")
    p.add_argument("folder", type=Path)
    p.set_defaults(func=_export)

    record = sub.add_parser("record", help="export one answer as a record; check one later")
    rsub = record.add_subparsers(dest="record_command", metavar="SUBCOMMAND", required=True)
    p = rsub.add_parser("export", help="write an answer's record as JSON, or HTML to print")
    p.add_argument("chat", type=int, help="the chat's number (`hearth chats list`)")
    p.add_argument("--message", type=int, help="the answer's number (default: the last one)")
    p.add_argument("-o", "--output", type=Path, required=True, help="FILE.json or FILE.html")
    p.set_defaults(func=_record_export)
    p = rsub.add_parser("verify", help="check a JSON record against the trail and documents")
    p.add_argument("file", type=Path)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_record_verify)


def _record_export(args: argparse.Namespace, services: Services) -> int:
    from engine import answer_record

    message = args.message
    if message is None:
        answers = [m for m in services.chats.messages(args.chat) if m.role == "assistant"]
        if not answers:
            print(f"hearth: chat {args.chat} has no answer yet", file=sys.stderr)
            return EXIT_ERROR
        message = answers[-1].id
    record = answer_record.write(services.paths, services.chats, message, args.output)
    if record["audit"] is None:
        print("hearth: note: this answer is not in the audit trail", file=sys.stderr)
    print(f"wrote {args.output}")
    return EXIT_OK


def _record_verify(args: argparse.Namespace, services: Services) -> int:
    from engine import answer_record

    try:
        record = json.loads(args.file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"hearth: cannot read {args.file}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    result = answer_record.verify(services.paths, record)
    if args.json:
        checks = [result.record, *result.sources]
        json.dump(
            {"ok": result.ok, "checks": [{"ok": c.ok, "what": c.what} for c in checks]},
            sys.stdout,
            indent=2,
            ensure_ascii=False,
        )
        sys.stdout.write("\n")
    else:
        for check in (result.record, *result.sources):
            print(f"{'ok     ' if check.ok else 'CHANGED'} {check.what}")
    return EXIT_OK if result.ok else EXIT_ERROR


def _trails(services: Services) -> dict[str, Any]:
    from engine import answer_audit

    return {t.path.name: t for t in answer_audit.trails(services.paths)}


def _reports(services: Services, heads: list[str]) -> list[Any]:
    from engine import audit

    wanted: dict[str, audit.Head] = {}
    for text in heads:
        name, _, head = text.partition("=")
        wanted[name] = audit.Head.parse(head)
    trails = _trails(services)
    unknown = set(wanted) - set(trails)
    if unknown:
        raise SystemExit(
            f"hearth: no trail named {', '.join(sorted(unknown))} ({', '.join(trails)})"
        )
    return [audit.verify(t.path, wanted.get(name)) for name, t in trails.items()]


def _report_dict(r: Any) -> dict[str, Any]:
    return {
        "trail": r.path.name,
        "ok": r.ok,
        "records": r.records,
        "unchained_before_chain": r.unchained,
        "first_seq": r.first_seq,
        "starts_after_retention": r.retained_from is not None,
        "head": str(r.head) if r.head else None,
        "problems": r.problems,
    }


def _verify(args: argparse.Namespace, services: Services) -> int:
    reports = _reports(services, args.head)
    if args.json:
        json.dump([_report_dict(r) for r in reports], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for r in reports:
            if not r.path.exists():
                print(f"{r.path.name}: no records yet")
                continue
            what = f"{r.records} records" + (
                f" (from seq {r.retained_from}; older ones removed by retention, as recorded)"
                if r.retained_from
                else ""
            )
            if r.unchained:
                what += f", after {r.unchained} lines from before the chain"
            print(f"{r.path.name}: {'intact' if r.ok else 'BROKEN'}, {what}")
            for problem in r.problems:
                print(f"  {problem}")
    return EXIT_OK if all(r.ok for r in reports) else EXIT_ERROR


def _head(args: argparse.Namespace, services: Services) -> int:
    heads = {name: t.head() for name, t in _trails(services).items()}
    if args.json:
        json.dump({n: str(h) if h else None for n, h in heads.items()}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    for name, head in heads.items():
        print(f"{name}={head}" if head else f"{name}: no records yet")
    return EXIT_OK


def _show(args: argparse.Namespace, services: Services) -> int:
    from engine import answer_audit

    records = [
        r for r in answer_audit.trail(services.paths).records() if r.get("kind") == "answer"
    ][-args.n :]
    if args.json:
        json.dump(records, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    for r in records:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["time"]))
        where = f"chat {r['chat']}" if r.get("chat") is not None else r.get("via", "")
        docs = f"  {len(r['sources'])} sources from {', '.join(r['collections'])}"
        print(
            f"{when}  #{r['seq']:<5} {where:10} {r['model']}  {r['status']}"
            + (docs if r.get("collections") else "")
        )
    return EXIT_OK


def _export(args: argparse.Namespace, services: Services) -> int:
    folder: Path = args.folder
    folder.mkdir(parents=True, exist_ok=True)
    reports = _reports(services, [])
    for name, t in _trails(services).items():
        if t.path.exists():
            shutil.copy2(t.path, folder / name)
    summary = {
        "exported": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "note": "Check again with `hearth audit verify`, or by recomputing each line's SHA-256 "
        "and comparing it with the next line's `prev` (docs/compliance.md).",
        "trails": [_report_dict(r) for r in reports],
    }
    (folder / "verification.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    ok = all(r.ok for r in reports)
    state = "every chain intact" if ok else "a chain is BROKEN (see verification.json)"
    print(f"exported to {folder}: {state}")
    return EXIT_OK if ok else EXIT_ERROR
