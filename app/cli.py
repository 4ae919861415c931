"""The `hearth` command: chat, ask, models (list/search/download/import/delete/fit), docs,
chats, packs, serve and api (the local OpenAI-compatible server), erase, doctor.

Engine errors print their user message to stderr and exit 1; nothing prints a traceback
unless --verbose. Ctrl-C during an answer stops the answer (the model stays loaded).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import __version__, network, workers
from engine.errors import Cancelled, HearthError, SchemaRefused

if TYPE_CHECKING:  # the services and the runtime load when a command runs, not for --help
    from app.compose import Services
    from engine.runtime import LoadParams, ModelRuntime, SamplingParams

EXIT_OK, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 130
# What `set_defaults(func=...)` names for each (sub)command.
Command = Callable[[argparse.Namespace, "Services"], int]


def _add_generation_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", "-m", help="model id from `hearth models list`, or a GGUF path")
    p.add_argument("--system", help="system prompt (default: the settings' system prompt)")
    p.add_argument("--temperature", type=float)
    p.add_argument("--top-p", type=float)
    p.add_argument("--top-k", type=int)
    p.add_argument("--min-p", type=float)
    p.add_argument("--repeat-penalty", type=float)
    p.add_argument("--max-tokens", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--stop", action="append", default=None, help="stop string (repeatable)")
    p.add_argument("--ctx", type=int, help="context length in tokens")
    p.add_argument("--threads", type=int, help="CPU threads (0: physical cores)")
    p.add_argument(
        "--gpu-layers",
        type=int,
        help="layers on the GPU: -1 as many as fit (the default), 0 the CPU, 99 all",
    )
    p.add_argument("--batch-size", type=int)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hearth", description="Private AI on your own machine. Nothing leaves it."
    )
    parser.add_argument("--version", action="version", version=f"hearth {__version__}")
    parser.add_argument("--verbose", "-v", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    chat = sub.add_parser("chat", help="interactive chat in the terminal")
    _add_generation_args(chat)
    chat.add_argument("--stats", action="store_true", help="print speed after each answer")
    chat.set_defaults(func=cmd_chat)

    ask = sub.add_parser("ask", help="answer one question and exit")
    ask.add_argument("question", help="the question (use - to read it from stdin)")
    _add_generation_args(ask)
    ask.add_argument(
        "--stats", action="store_true", help="print tokens/s and time to first token on stderr"
    )
    ask.add_argument("--json", action="store_true", help="print answer and stats as JSON")
    ask.add_argument(
        "--docs",
        metavar="COLLECTION",
        help="answer from this document collection and list the sources",
    )
    ask.add_argument(
        "--docs-only",
        action="store_true",
        help="with --docs: say so instead of answering when nothing relevant is found",
    )
    ask.add_argument(
        "--schema",
        metavar="FILE",
        type=Path,
        help="answer with JSON matching this JSON Schema file (held to it token by token)",
    )
    ask.set_defaults(func=cmd_ask)

    from app import cli_api, cli_audit, cli_chats, cli_docs, cli_models, cli_packs, cli_remote

    for module in (cli_models, cli_docs, cli_chats, cli_packs, cli_api, cli_audit, cli_remote):
        module.add_parser(sub)

    erase = sub.add_parser("erase", help="delete all my data: chats, indexes, models, logs…")
    erase.add_argument("--yes", action="store_true", help="do not ask (for scripts)")
    erase.set_defaults(func=cmd_erase)

    doctor = sub.add_parser("doctor", help="versions, llama.cpp build, devices, data paths")
    doctor.add_argument("--json", action="store_true")
    doctor.add_argument("--no-hash", action="store_true", help="skip hashing the bundled models")
    doctor.set_defaults(func=cmd_doctor)

    selftest = sub.add_parser(
        "selftest",
        help="prove llama.cpp on this CPU: the bundled model answers, fast and plain kernels agree",
    )
    selftest.add_argument(
        "--record", nargs="?", const="", help="keep the result as JSON (default: beside llama.cpp)"
    )
    selftest.add_argument("--json", action="store_true")
    selftest.add_argument("--only", choices=["answer", "kernels"], help="one check")
    selftest.set_defaults(func=cmd_selftest)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    network.install("hearth")
    if workers.run_if_worker(argv):  # a frozen build re-runs itself as one of its workers
        return EXIT_OK
    parser = build_parser()
    args = parser.parse_args(argv)
    command: Command | None = getattr(args, "func", None)
    if command is None:
        parser.print_help()
        return EXIT_OK
    from app import compose

    services = compose.build(verbose=args.verbose)
    try:
        return command(args, services)
    except HearthError as exc:
        print(f"hearth: {exc.user_message}", file=sys.stderr)
        if args.verbose and exc.detail:
            print(f"hearth: detail: {exc.detail}", file=sys.stderr)
        return EXIT_ERROR
    except Cancelled:
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        services.close()


# -- shared ---------------------------------------------------------------------------


def _request_parts(
    args: argparse.Namespace,
    services: Services,
) -> tuple[LoadParams, SamplingParams, str | None]:
    from engine import models

    settings = services.settings
    model = args.model or settings.get("model.default")
    load = models.load_params(
        model,
        settings,
        services.paths,
        accept_paths=True,
        context_length=args.ctx,
        threads=args.threads,
        gpu_layers=args.gpu_layers,
        batch_size=args.batch_size,
    )
    sampling_overrides = {
        "temperature": args.temperature,
        "top_p": args.top_p,
        "top_k": args.top_k,
        "min_p": args.min_p,
        "repeat_penalty": args.repeat_penalty,
        "max_tokens": args.max_tokens,
        "seed": args.seed,
        "stop": tuple(args.stop) if args.stop else None,
    }
    sampling, system, _ = models.answer_defaults(model, settings, services.paths)
    sampling = replace(sampling, **{k: v for k, v in sampling_overrides.items() if v is not None})
    return load, sampling, args.system if args.system is not None else system


@contextmanager
def _ctrl_c_stops(runtime: ModelRuntime) -> Iterator[threading.Event]:
    """While an answer streams, Ctrl-C asks the runtime to stop instead of killing us."""
    pressed = threading.Event()

    def on_sigint(_signum: int, _frame: Any) -> None:
        pressed.set()
        # Never block in a signal handler: the main thread may hold the runtime's send lock.
        threading.Thread(target=runtime.stop, daemon=True).start()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, previous)


def _format_stats(stats: Any) -> str:
    return (
        f"{stats.generated_tokens} tokens, {stats.tokens_per_s:.1f} tokens/s, "
        f"first token after {stats.time_to_first_token_s * 1000:.0f} ms, "
        f"prompt {stats.prompt_tokens} tokens ({stats.cached_tokens} cached, "
        f"{stats.prefill_tokens_per_s:.0f} tokens/s), stop: {stats.stop_reason}"
    )


# -- commands -------------------------------------------------------------------------


def cmd_ask(args: argparse.Namespace, services: Services) -> int:
    from engine.documents.answer import answer
    from engine.documents.citing import place
    from engine.documents.events import Grounded, NothingRelevant, Retrieved
    from engine.runtime import ChatMessage, ChatRequest, Done, Notice, TextPiece

    question = sys.stdin.read() if args.question == "-" else args.question
    if args.docs_only and not args.docs:
        print("hearth: --docs-only needs --docs COLLECTION", file=sys.stderr)
        return EXIT_ERROR
    if args.docs_only and args.schema:
        print(
            "hearth: --docs-only answers with a sentence when nothing relevant is found, "
            "which no schema matches; leave out one of --docs-only and --schema",
            file=sys.stderr,
        )
        return EXIT_ERROR
    if args.docs:
        services.documents.info(args.docs)  # an unknown collection fails before loading
    load, sampling, system = _request_parts(args, services)
    if args.schema:
        sampling = replace(sampling, json_schema=_read_schema(args.schema))
    loaded = services.runtime.load(load)
    if args.docs:
        events: Any = answer(
            services.runtime,
            services.documents,
            args.docs,
            question,
            sampling=sampling,
            system=system,
            documents_only=args.docs_only,
        )
    else:
        events = services.runtime.stream_chat(
            ChatRequest((ChatMessage("user", question),), sampling, system)
        )
    text: list[str] = []
    notices: list[str] = []
    sources: list[Any] | None = None
    checked: Any = None
    stats = None
    with _ctrl_c_stops(services.runtime):
        for event in events:
            if isinstance(event, TextPiece):
                text.append(event.text)
                if not args.json:
                    sys.stdout.write(event.text)
                    sys.stdout.flush()
            elif isinstance(event, Notice):
                notices.append(event.message)
                print(f"hearth: note: {event.message}", file=sys.stderr)
            elif isinstance(event, Retrieved):
                sources = event.sources
                for note in event.notes:
                    notices.append(note)
                    print(f"hearth: note: {note}", file=sys.stderr)
            elif isinstance(event, NothingRelevant):
                sources = []
                text.append(event.message)
                if not args.json:
                    sys.stdout.write(event.message)
            elif isinstance(event, Done):
                stats = event.stats
            elif isinstance(event, Grounded):
                checked = event.grounding
    from engine import answer_audit

    answer_audit.record_answer(
        services.paths,
        via="ask",
        model=args.model or services.settings.get("model.default"),
        status="stopped" if stats is None or stats.stop_reason == "cancelled" else "done",
        question=question,
        answer="".join(text),
        collections=[args.docs] if args.docs else [],
        sources=[s.as_dict() for s in sources or []],
        sampling=dataclasses.asdict(sampling),
    )
    if args.json:
        json.dump(
            {
                "answer": "".join(text),
                "model": loaded.name,
                "model_path": load.model_path,
                "notices": notices,
                "stats": stats.as_dict() if stats else None,
                **(
                    {
                        "collection": args.docs,
                        "sources": [s.as_dict() for s in sources or []],
                        "grounding": checked.as_dict() if checked else None,
                    }
                    if args.docs
                    else {}
                ),
            },
            sys.stdout,
            ensure_ascii=False,
            indent=2,
        )
    sys.stdout.write("\n")
    if sources and not args.json:
        print("\nSources:")
        for s in sources:
            where = place(s.page, s.line_start, s.line_end, s.ocr)
            section = f" · {s.heading}" if s.heading else ""
            print(f"[{s.n}] {s.path}, {where}{section} (similarity {s.similarity:.2f})")
            print(f"    “{' '.join(s.quote.split())[:300]}”")
    if checked is not None and not args.json:
        if checked.show_evidence:
            print(f"\nEvidence from the sources ({checked.evidence_note()}):")
            for e in checked.evidence:
                print(f"  [{e.source}] “{' '.join(e.text.split())}”")
        print(f"\nChecked against the sources: {checked.summary()}")
        for c in checked.sentences:
            if c.verdict in ("partial", "unsupported") or c.citation_problem:
                why = c.citation_problem or c.verdict
                print(f"  {why}: “{' '.join(c.text.split())[:200]}”")
    if args.stats and stats is not None:
        print(f"hearth: {_format_stats(stats)}", file=sys.stderr)
    if stats is not None and stats.stop_reason == "cancelled":
        return EXIT_INTERRUPTED
    return EXIT_OK


def _read_schema(path: Path) -> str:
    """The schema file's text, checked now so a bad file fails before the model loads."""
    from engine.runtime import json_grammar

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaRefused(f"The schema file {path} could not be read: {exc}") from None
    json_grammar.check(text)
    return text


def cmd_chat(args: argparse.Namespace, services: Services) -> int:
    from engine.runtime import ChatMessage, ChatRequest, Done, Notice, TextPiece

    load, sampling, system = _request_parts(args, services)
    loaded = services.runtime.load(load)
    print(
        f"Hearth chat with {loaded.name}. Enter sends; Ctrl-C stops an answer; "
        f"/reset starts over; /exit or Ctrl-D quits.",
        file=sys.stderr,
    )
    history: list[ChatMessage] = []
    while True:
        try:
            line = input("you> ")
        except EOFError:
            print(file=sys.stderr)
            return EXIT_OK
        except KeyboardInterrupt:
            print(file=sys.stderr)
            continue
        text = line.strip()
        if not text:
            continue
        if text in ("/exit", "/quit"):
            return EXIT_OK
        if text == "/reset":
            history.clear()
            print("(new conversation)", file=sys.stderr)
            continue
        history.append(ChatMessage("user", text))
        answer: list[str] = []
        stats = None
        sys.stdout.write("ai> ")
        sys.stdout.flush()
        try:
            with _ctrl_c_stops(services.runtime):
                for event in services.runtime.stream_chat(
                    ChatRequest(tuple(history), sampling, system)
                ):
                    if isinstance(event, TextPiece):
                        answer.append(event.text)
                        sys.stdout.write(event.text)
                        sys.stdout.flush()
                    elif isinstance(event, Notice):
                        print(f"\n(note: {event.message})", file=sys.stderr)
                    elif isinstance(event, Done):
                        stats = event.stats
        except HearthError as exc:
            print(f"\nhearth: {exc.user_message}", file=sys.stderr)
            history.pop()
            continue
        sys.stdout.write("\n")
        if stats is not None and stats.stop_reason == "cancelled":
            print("(stopped)", file=sys.stderr)
        if args.stats and stats is not None:
            print(f"({_format_stats(stats)})", file=sys.stderr)
        history.append(ChatMessage("assistant", "".join(answer)))


def cmd_erase(args: argparse.Namespace, services: Services) -> int:
    from engine import erase
    from engine.units import size_text

    print("This deletes everything Hearth keeps for you on this computer, for good:")
    for area in erase.inventory(services.paths):
        print(f"  {area.name}: {area.files} files, {size_text(area.size)}  ({area.folder})")
    print("Model files imported in place or downloaded by other apps are not touched.")
    if not args.yes:
        if not sys.stdin.isatty():
            print("hearth: nothing deleted; confirm with --yes", file=sys.stderr)
            return EXIT_ERROR
        if input("Type DELETE to confirm: ").strip() != "DELETE":
            print("Nothing was deleted.")
            return EXIT_OK
    areas = services.erase_all_data()
    print(f"Deleted {sum(a.files for a in areas)} files. Hearth's data folders are gone.")
    return EXIT_OK


def cmd_selftest(args: argparse.Namespace, services: Services) -> int:
    from engine.runtime import selftest

    argv = ["--record", args.record] if args.record is not None else []
    argv += ["--only", args.only] if args.only else []
    return selftest.main(argv + (["--json"] if args.json else []))


def _print_cpu_kernels(cpu: dict[str, Any]) -> None:
    """The CPU as llama.cpp meets it: features, variant, AMX, kernels, and the self-test."""
    k = cpu["llama_cpp"]
    print(f"  {cpu['model']}: {', '.join(k['features']) or 'no features named'}")
    print(f"  llama.cpp CPU code: {k['variant']}; AMX: {k['amx']}")
    print(f"  kernels for the bundled model: {k['fast_kernels']}")
    build = k["build"]
    if build.get("patch"):
        print(f"  llama.cpp source patched: {build['patch']} ({build.get('patch_answers')})")
    if build.get("cflags"):
        print(f"  llama.cpp compiled with {build['cflags']}")
    crashed = cpu.get("fast_kernels_crashed")
    if crashed:
        print(
            f"  fast kernels: OFF in the app since {crashed['when']} (they crashed with "
            f"{crashed['signal']} in a first answer); delete {cpu['fast_kernels_memory']} to "
            "try them again"
        )
    test = k["selftest"]
    if test is None:
        print("  self-test: none recorded for this build (python -m engine.runtime.selftest)")
    else:
        whose = "" if test.get("current") else " (recorded for ANOTHER build of llama.cpp)"
        print(f"  self-test {test['when']}{whose}: {test['summary']}")


def cmd_doctor(args: argparse.Namespace, services: Services) -> int:
    from engine import diagnostics

    report = diagnostics.report(services.paths, not args.no_hash, services.policy)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    lc = report["llama_cpp"]
    print(f"Hearth {report['hearth']}  (Python {report['python']}, {report['platform']})")
    print(
        f"CPU: {report['cpu']['physical']} physical / {report['cpu']['logical']} logical "
        f"cores; memory {report['memory']['total'] / 2**30:.1f} GiB "
        f"({report['memory']['available'] / 2**30:.1f} GiB available)"
    )
    print("\nPackages:")
    for name, version in report["packages"].items():
        print(f"  {name:24} {version or 'NOT INSTALLED'}")
    print("\nProcessor, as llama.cpp meets it:")
    _print_cpu_kernels(report["cpu"])
    print(f"\nllama.cpp (llama-cpp-python {lc['llama_cpp_python']}):")
    print(f"  CPU kernels: {', '.join(lc['cpu_kernels'])}")
    print(f"  CPU dispatch: {lc['cpu_dispatch']}")
    print(f"  GPU offload: {'supported' if lc['gpu_offload'] else 'not in this build'}")
    for dev in lc["devices"]:
        print(
            f"  device {dev['name']}: {dev['description']} ({dev['type']}, "
            f"{dev['memory_free'] / 2**30:.1f} of {dev['memory_total'] / 2**30:.1f} GiB free)"
        )
    gpu = report["gpu"]
    print(f"\nGPU: backend {gpu['backend']}")
    for g in gpu["gpus"]:
        usable = "usable" if g["usable"] else "NOT usable by this build"
        print(
            f"  {g['name']} ({g['source']}, {g['backend']}): {g['memory_free'] / 2**30:.1f} of "
            f"{g['memory_total'] / 2**30:.1f} GiB free, {usable}"
        )
    if not gpu["gpus"]:
        print("  no GPU found (llama.cpp's devices, NVML, vulkaninfo)")
    if gpu["advice"]:
        print(f"  {gpu['advice']}")
    print("\nData folders:")
    for key, value in report["paths"].items():
        print(f"  {key:8} {value}")
    print("\nBundled models:")
    for m in report["bundled_models"]:
        if not m["present"]:
            print(f"  {m['id']}: MISSING - {m['problem']}")
            continue
        check = ""
        if "sha256_ok" in m:
            check = "  (matches the pinned hash)" if m["sha256_ok"] else "  (HASH MISMATCH)"
        print(f"  {m['id']}: {m['size'] / 1e6:.1f} MB at {m['path']}")
        if "sha256" in m:
            print(f"    sha256 of {m['sha256_of']}: {m['sha256']}{check}")
    print(f"\nDocument embedder: runs on {report['embedder']['runs_on']}")
    privacy = report["privacy"]
    print("\nPrivacy:")
    print(
        f"  network guard: {'on' if privacy['guard_installed'] else 'OFF'}; Hugging Face and "
        f"chromadb offline, telemetry off"
    )
    print(
        f"  network attempts recorded: {privacy['attempts']} ({privacy['allowed']} allowed "
        f"downloads, {privacy['refused']} refused), log {privacy['egress_log']}"
    )
    found = privacy["analytics_packages"]
    print(f"  analytics or crash-reporting packages: {', '.join(found) if found else 'none'}")
    pol = report["policy"]
    print("\nMachine policy:")
    if pol["sources"]:
        print(f"  in force from {', '.join(pol['sources'])}")
        for key, lock in pol["locked"].items():
            print(f"  locked {key} = {json.dumps(lock['value'])}: {lock['reason']}")
    else:
        print(f"  none (looked for {pol['looked_at']})")
    for warning in pol["warnings"]:
        print(f"  {warning}")
    bad = [m for m in report["bundled_models"] if not m["present"] or m.get("sha256_ok") is False]
    return EXIT_ERROR if bad or found else EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
