"""`hearth docs add | sync | list | search | remove | watch | publish | attach`, each with --json
where it prints results. Indexing progress goes to stderr; results to stdout."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.compose import Services

EXIT_OK, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 130


def add_parser(sub: Any) -> None:
    docs = sub.add_parser("docs", help="document collections: index and search your files")
    docs.set_defaults(func=_list, name=None, problems=False, json=False)  # plain `docs`
    dsub = docs.add_subparsers(dest="docs_command", metavar="SUBCOMMAND")

    p = dsub.add_parser(
        "add", help="add folders or files to a collection (created if new) and index them"
    )
    p.add_argument("name")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--no-sync", action="store_true", help="only record the paths")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_add)

    p = dsub.add_parser("sync", help="index what changed since the last sync")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_sync)

    p = dsub.add_parser("list", help="collections, or one collection's files and statuses")
    p.add_argument("name", nargs="?")
    p.add_argument("--problems", action="store_true", help="only skipped and failed files")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_list)

    p = dsub.add_parser("search", help="find passages (needs no chat model)")
    p.add_argument("name")
    p.add_argument("query")
    p.add_argument("--top-k", type=int, help="passages to show (default: documents.top_k)")
    p.add_argument(
        "--min-score", type=float, help="least cosine similarity (default: documents.min_score)"
    )
    p.add_argument("--mode", choices=("hybrid", "vector", "bm25"), default="hybrid")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_search)

    p = dsub.add_parser(
        "remove",
        help="remove paths from a collection, or the whole "
        "collection (your files are never touched)",
    )
    p.add_argument("name")
    p.add_argument("paths", nargs="*", metavar="PATH")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_remove)

    p = dsub.add_parser(
        "embedder",
        help="embed a collection's passages again with another embedder (bundled ones only)",
    )
    p.add_argument("name")
    p.add_argument("model", help="an embedder id, as `hearth models list` shows it")
    p.add_argument("--no-sync", action="store_true", help="only record it; the next sync does it")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_embedder)

    p = dsub.add_parser(
        "publish",
        help="put a collection's passages and vectors on a Chroma server (one of "
        "remote.chroma_servers) for others to attach",
    )
    p.add_argument("name")
    p.add_argument("--server", required=True, metavar="URL", help="the Chroma server's URL")
    p.add_argument("--as", dest="remote_name", metavar="NAME", help="its name on the server")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_publish)

    p = dsub.add_parser(
        "attach",
        help="use a collection published on a Chroma server; `sync` downloads it again",
    )
    p.add_argument("url", metavar="URL", help="the Chroma server's URL")
    p.add_argument("remote_name", metavar="REMOTE_NAME", help="the collection's name there")
    p.add_argument("--as", dest="local_name", metavar="LOCAL", help="its name here")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_attach)

    p = dsub.add_parser("watch", help="keep a collection in sync while its files change")
    p.add_argument("name")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between checks")
    p.set_defaults(func=_watch)


def _emit(args: argparse.Namespace, data: Any) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def _add(args: argparse.Namespace, services: Services) -> int:
    from engine.errors import CollectionNotFound

    lib = services.documents
    try:
        info = lib.add(args.name, args.paths)
        created = False
    except CollectionNotFound:
        info = lib.create(args.name, args.paths)
        created = True
    if not args.json:
        verb = "created with" if created else "now has"
        print(f"“{info.name}” {verb} {len(info.sources)} folder(s)/file(s).", file=sys.stderr)
    if args.no_sync:
        if args.json:
            _emit(args, info.as_dict())
        return EXIT_OK
    return _sync(args, services)


def _sync(args: argparse.Namespace, services: Services) -> int:
    from engine.documents.events import IndexDone, IndexProgress

    lib = services.documents
    done: IndexDone | None = None
    progress = _Progress()
    events = lib.sync(args.name)
    try:
        for event in events:
            if isinstance(event, IndexProgress):
                progress.show(event)
            elif isinstance(event, IndexDone):
                done = event
    except KeyboardInterrupt:
        events.close()
        progress.end()
        info = lib.info(args.name)
        print(
            f"Stopped. {info.counts['indexed']} files are indexed so far; "
            f"`hearth docs sync {args.name}` goes on from there.",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    progress.end()
    assert done is not None
    problems = [r for r in lib.documents(args.name) if r.status != "indexed"]
    if args.json:
        _emit(args, {**done.__dict__, "problems": [_doc_dict(r) for r in problems]})
        return EXIT_OK
    print(
        f"{done.collection}: {done.indexed} indexed, {done.unchanged} unchanged, "
        f"{done.skipped} skipped, {done.failed} failed, {done.removed} removed; "
        f"{done.chunks_added} passages added"
        + (f", {done.reembedded} embedded again with the new embedder" if done.reembedded else "")
        + f" in {done.seconds:.1f} s. "
        f"Collection: {done.counts['indexed']} files, {done.counts['chunks']} passages."
    )
    for note in done.notes:
        print(f"note: {note}")
    for r in problems:
        print(f"  {r.status:8} {r.path}: {r.reason}")
    return EXIT_OK


def _library(services: Services) -> Any:
    from engine.documents.library import DocumentLibrary
    from engine.errors import DocumentError

    lib = services.documents
    if not isinstance(lib, DocumentLibrary):  # the CLI's is; the window's works in a child
        raise DocumentError("Shared collections are published and attached from the CLI.")
    return lib


def _publish(args: argparse.Namespace, services: Services) -> int:
    from engine.documents.events import IndexProgress, Published

    progress = _Progress()
    done: Published | None = None
    events = _library(services).publish(args.name, args.server, args.remote_name)
    try:
        for event in events:
            if isinstance(event, IndexProgress):
                progress.show(event)
            elif isinstance(event, Published):
                done = event
    except KeyboardInterrupt:
        events.close()
        progress.end()
        print("Stopped; publishing again finishes the job.", file=sys.stderr)
        return EXIT_INTERRUPTED
    progress.end()
    assert done is not None
    if args.json:
        _emit(args, done.__dict__)
        return EXIT_OK
    print(
        f"{done.collection}: {done.passages} passages on {done.server} as “{done.remote_name}”"
        f" ({done.removed} removed) in {done.seconds:.1f} s. Others attach it with: "
        f"hearth docs attach {done.server} {done.remote_name}"
    )
    return EXIT_OK


def _attach(args: argparse.Namespace, services: Services) -> int:
    from engine.documents.events import IndexDone, IndexProgress

    progress = _Progress()
    done: IndexDone | None = None
    for event in _library(services).attach(args.url, args.remote_name, args.local_name):
        if isinstance(event, IndexProgress):
            progress.show(event)
        elif isinstance(event, IndexDone):
            done = event
    progress.end()
    assert done is not None
    if args.json:
        _emit(args, {**done.__dict__, "shared": f"{args.url} {args.remote_name}"})
        return EXIT_OK
    print(
        f"“{done.collection}”: {done.counts['indexed']} files, {done.counts['chunks']} "
        f"passages from {args.url} ({args.remote_name}); its vectors stay on the server. "
        f"`hearth docs sync {done.collection}` downloads it again."
    )
    return EXIT_OK


class _Progress:
    """One line on stderr, rewritten in place on a terminal, every few seconds otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        self.shown = False

    def show(self, ev: Any) -> None:
        now = time.monotonic()
        if now - self.last < (0.1 if self.tty else 2.0):
            return
        self.last = now
        if ev.phase == "scanning":
            line = f"scanning… {ev.files_total} files found"
        elif ev.phase == "vectors":
            line = "updating the vector index…"
        elif ev.phase in ("publishing", "downloading"):
            eta = f", about {ev.eta_s:.0f} s left" if ev.eta_s is not None else ""
            line = f"{ev.phase}: {ev.files_done}/{ev.files_total} passages{eta}"
        elif ev.phase == "re-embedding":
            eta = f", about {ev.eta_s:.0f} s left" if ev.eta_s is not None else ""
            line = f"embedding again: {ev.files_done}/{ev.files_total} passages{eta}"
        else:
            eta = f", about {ev.eta_s:.0f} s left" if ev.eta_s is not None else ""
            line = (
                f"reading {ev.files_done}/{ev.files_total} files, {ev.chunks} passages "
                f"({ev.chunks_per_s:.0f}/s){eta}"
            )
            if ev.detail:  # a long file (OCR of a scan) says how far it is
                line += f"; {ev.detail} of {Path(ev.current or '').name}"
        if self.tty:
            sys.stderr.write("\r\033[K" + line)
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()
        self.shown = True

    def end(self) -> None:
        if self.tty and self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def _doc_dict(r: Any) -> dict[str, Any]:
    return {
        "path": r.path,
        "kind": r.kind,
        "status": r.status,
        "reason": r.reason,
        "size": r.size,
        "pages": r.pages,
        "chunks": r.chunk_count,
        "sha256": r.sha256,
    }


def _list(args: argparse.Namespace, services: Services) -> int:
    lib = services.documents
    if args.name is None:
        infos = lib.collections()
        if args.json:
            _emit(args, [i.as_dict() for i in infos])
            return EXIT_OK
        if not infos:
            print("No collections yet. Add one with: hearth docs add NAME FOLDER")
        for i in infos:
            c = i.counts
            print(
                f"{i.name}: {c['indexed']} indexed, {c['skipped']} skipped, "
                f"{c['failed']} failed, {c['chunks']} passages"
            )
            for s in i.sources:
                print(f"    {s}")
            if i.shared:
                print(f"    shared from {i.shared}")
        return EXIT_OK
    rows = lib.documents(args.name)
    if args.problems:
        rows = [r for r in rows if r.status != "indexed"]
    if args.json:
        _emit(args, [_doc_dict(r) for r in rows])
        return EXIT_OK
    for r in rows:
        detail = f"{r.chunk_count} passages" if r.status == "indexed" else r.reason
        note = f" ({r.reason})" if r.status == "indexed" and r.reason else ""
        print(f"{r.status:8} {r.path}: {detail}{note}")
    return EXIT_OK


def _search(args: argparse.Namespace, services: Services) -> int:
    from engine.documents.citing import place

    result = services.documents.search(
        args.name, args.query, top_k=args.top_k, min_score=args.min_score, mode=args.mode
    )
    if args.json:
        _emit(
            args,
            {
                "query": args.query,
                "mode": result.mode,
                "notes": result.notes,
                "hits": [h.as_dict() for h in result.hits],
            },
        )
        return EXIT_OK
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if not result.hits:
        print("Nothing relevant found.")
    for n, h in enumerate(result.hits, start=1):
        where = place(h.page, h.line_start, h.line_end, h.ocr)
        section = f" · {h.heading}" if h.heading else ""
        print(
            f"[{n}] {h.path} ({where}{section})  similarity {h.similarity:.2f}, "
            f"rank vector {h.vector_rank or '-'} / words {h.bm25_rank or '-'}"
        )
        print("    " + " ".join(h.text.split())[:400])
    return EXIT_OK


def _remove(args: argparse.Namespace, services: Services) -> int:
    lib = services.documents
    if not args.paths:
        lib.delete(args.name)
        if args.json:
            _emit(args, {"deleted": args.name})
        else:
            print(f"Collection “{args.name}” removed (your files were not touched).")
        return EXIT_OK
    lib.remove_paths(args.name, args.paths)
    return _sync(args, services)


def _embedder(args: argparse.Namespace, services: Services) -> int:
    info = services.documents.set_embedder(args.name, args.model)
    if not args.json:
        what = (
            f"will be embedded again with {info.embedder_next}"
            if info.embedder_next
            else f"already uses {info.embedder}"
        )
        print(f"“{info.name}” {what}.", file=sys.stderr)
    if args.no_sync or not info.embedder_next:
        if args.json:
            _emit(args, info.as_dict())
        return EXIT_OK
    return _sync(args, services)


def _watch(args: argparse.Namespace, services: Services) -> int:
    from engine.documents import watch

    args.json = False
    code = _sync(args, services)
    if code != EXIT_OK:
        return code
    stop = threading.Event()
    info = services.documents.info(args.name)
    print(
        f"Watching {len(info.sources)} folder(s)/file(s) of “{args.name}”; Ctrl-C stops.",
        file=sys.stderr,
    )
    try:
        for _ in watch.changes(info.sources, stop, interval_s=args.interval):
            code = _sync(args, services)
            if code != EXIT_OK:
                return code
    except KeyboardInterrupt:
        stop.set()
    return EXIT_OK
