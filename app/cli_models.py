"""`hearth models list | search | download | import | delete | fit`, each with --json."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.units import size_text

if TYPE_CHECKING:
    from app.compose import Services
    from engine.models import DownloadDone

EXIT_OK, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 130


def add_parser(sub: Any) -> None:
    models = sub.add_parser("models", help="find, download, import, delete and size up models")
    models.set_defaults(func=_list, discover=False, folder=[], json=False)  # plain `models`
    msub = models.add_subparsers(dest="models_command", metavar="SUBCOMMAND")

    p = msub.add_parser("list", help="installed models (and paused downloads)")
    p.add_argument(
        "--discover",
        action="store_true",
        help="also list GGUF files other apps downloaded (HF cache, LM Studio, "
        "GPT4All, models.search_folders)",
    )
    p.add_argument("--folder", action="append", default=[], help="another folder to look in")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_list)

    p = msub.add_parser("search", help="search the catalog")
    p.add_argument("text", nargs="*", help="words to match (id, name, family, tags...)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_search)

    p = msub.add_parser("download", help="download a catalog model (resumes a paused one)")
    p.add_argument("id")
    p.add_argument("--endpoint", help="the Hub or a mirror (default: downloads.endpoint)")
    p.add_argument("--token", help="access token for gated or private models (or HF_TOKEN)")
    p.add_argument("--json", action="store_true", help="progress and result as JSON lines")
    p.set_defaults(func=_download)

    p = msub.add_parser("import", help="add a local GGUF file")
    p.add_argument("path")
    p.add_argument(
        "--in-place", action="store_true", help="use the file where it is instead of copying it"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_import)

    p = msub.add_parser("delete", help="delete a model (files elsewhere are only forgotten)")
    p.add_argument("id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_delete)

    p = msub.add_parser("fit", help="will it run here, and how")
    p.add_argument("id", help="catalog id, installed id or GGUF path")
    p.add_argument("--ctx", type=int, help="context length (default: inference.context_length)")
    p.add_argument("--cpu", action="store_true", help="estimate without the GPU")
    p.add_argument(
        "--kv",
        choices=("f16", "q8_0", "q4_0"),
        help="KV cache type (default: inference.kv_cache_type)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_fit)


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def _list(args: argparse.Namespace, services: Services) -> int:
    from engine import models

    ov = models.overview(
        services.settings,
        services.paths,
        search=None,
        discover=args.discover or bool(args.folder),
        extra_folders=args.folder,
    )
    entries = [m.as_dict() for m in ov.installed]
    found = [f.as_dict() for f in ov.found]
    if args.json:
        _print_json({"installed": entries, "paused_downloads": ov.paused, "found": found})
        return EXIT_OK
    for m in entries:
        if not m["usable"]:
            print(f"{m['id']}  UNUSABLE: {m['problem']}  [{m['source']}]")
            continue
        print(
            f"{m['id']}  {m['name']}  {m['parameters'] / 1e6:.0f}M params  "
            f"{m['quantization']}  ctx {m['context_length']}  {size_text(m['file_size'])}  "
            f"[{m['source']}]"
        )
    for p in ov.paused:
        print(
            f"(paused) {p['file']} from {p['repo']}: {size_text(p['have'])} of "
            f"{size_text(p['size'])}; `hearth models download` continues it"
        )
    for f in found:
        state = "" if f["usable"] else f"  UNUSABLE: {f['problem']}"
        app = f"{f['app']} {f['label']}" if f.get("label") else f["app"]
        print(f"(found in {app}) {f['path']}  {size_text(f['size'])}{state}")
    if found:
        print("Use one without copying: hearth models import PATH --in-place")
    return EXIT_OK


def _search(args: argparse.Namespace, services: Services) -> int:
    from engine import models

    ov = models.overview(
        services.settings, services.paths, search=" ".join(args.text), discover=False
    )
    rows = [r.as_dict() for r in ov.catalog]
    if args.json:
        _print_json(rows)
        return EXIT_OK
    if not rows:
        print("No catalog model matches.")
    for r in rows:
        mark = "installed" if r["installed"] else r["fit"]["verdict"].upper()
        size = ("~" if not r["size_exact"] else "") + size_text(r["size_bytes"])
        print(f"{r['id']:40} {size:>9}  {r['license']['spdx']:32} [{mark}]")
        print(f"    {r['description']}")
    return EXIT_OK


def _download(args: argparse.Namespace, services: Services) -> int:
    from dataclasses import replace

    from engine import models

    model = models.load_catalog().get(args.id)
    config = models.DownloadConfig.from_settings(services.settings, token=args.token)
    if args.endpoint:
        config = replace(config, endpoint=args.endpoint.rstrip("/"))
    stream = models.download(models.DownloadRequest.for_model(model), services.paths, config)
    tty = sys.stderr.isatty() and not args.json
    try:
        for event in stream:
            if isinstance(event, models.DownloadDone):
                return _download_done(event, args)
            if args.json:
                print(json.dumps({"event": "progress", **event.__dict__}), flush=True)
            elif event.stage == "downloading":
                line = (
                    f"{event.fraction:6.1%}  {size_text(event.done)} of "
                    f"{size_text(event.total)}  {event.speed_bps / 1e6:6.1f} MB/s"
                    + (f"  ETA {event.eta_s:4.0f} s" if event.eta_s is not None else "")
                )
                print(
                    ("\r" + line) if tty else line,
                    end="" if tty else "\n",
                    file=sys.stderr,
                    flush=True,
                )
            else:
                print(
                    f"{event.stage}{': ' + event.message if event.message else ''}",
                    file=sys.stderr,
                    flush=True,
                )
    except KeyboardInterrupt:
        stream.close()
        print("\nPaused. Run the same command again to continue where it stopped.", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_ERROR


def _download_done(done: DownloadDone, args: argparse.Namespace) -> int:
    result = {
        "event": "done",
        "path": str(done.path),
        "sha256": done.sha256,
        "size": done.size,
        "resumed_from": done.resumed_from,
        "fetched_bytes": done.fetched_bytes,
        "commit": done.commit,
        "verified_against": done.verified_against,
        "already_installed": done.already_installed,
    }
    if args.json:
        print(json.dumps(result), flush=True)
    else:
        if sys.stderr.isatty():
            print(file=sys.stderr)
        what = "already installed" if done.already_installed else "installed"
        print(f"{args.id} {what}: {done.path} (sha256 verified against {done.verified_against})")
    return EXIT_OK


def _import(args: argparse.Namespace, services: Services) -> int:
    from engine import models

    result = None
    for event in models.import_model(Path(args.path), services.paths, copy=not args.in_place):
        if isinstance(event, models.Imported):
            result = event.model
        elif not args.json and sys.stderr.isatty():
            print(f"\rcopying {event.done / max(event.total, 1):6.1%}", end="", file=sys.stderr)
    assert result is not None
    if args.json:
        _print_json(result.as_dict())
    else:
        how = "used in place" if args.in_place else "copied into the models folder"
        print(f"imported as {result.id} ({how}): {result.path}")
    return EXIT_OK


def _delete(args: argparse.Namespace, services: Services) -> int:
    from engine import models

    result = models.delete(args.id, services.paths)
    if args.json:
        _print_json(result)
    elif result["deleted_file"]:
        print(f"deleted {result['id']}: freed {size_text(result['freed_bytes'])}")
    else:
        print(f"forgot {result['id']}; the file at {result['path']} was left where it is")
    return EXIT_OK


def _fit(args: argparse.Namespace, services: Services) -> int:
    from engine import models

    context = args.ctx or int(services.settings.get("inference.context_length"))
    kv = args.kv or str(services.settings.get("inference.kv_cache_type"))
    fit = models.fit_for(args.id, services.paths, context, use_gpu=not args.cpu, kv_type=kv)
    est = fit.estimate
    if args.json:
        _print_json(fit.as_dict())
        return EXIT_OK
    labels = {
        "gpu": "fits on the GPU",
        "partial": "partial GPU offload",
        "cpu": "CPU only",
        "no": "won't fit",
    }
    print(f"{args.id}: {labels[est.verdict]}")
    print(f"  {est.explanation}")
    print(
        f"  weights {size_text(est.weights_bytes)} + KV cache {size_text(est.kv_bytes)} "
        f"({est.context} tokens) + compute {size_text(est.compute_bytes)} + runtime"
    )
    if est.runs:
        # -1 (Automatic) re-plans at load from the free memory then; 99 is every layer
        layers = 99 if est.gpu_layers < 0 else est.gpu_layers
        print(f"  recommended: --ctx {est.context} --gpu-layers {layers}")
    return EXIT_OK
