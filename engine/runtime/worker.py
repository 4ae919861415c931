"""The model worker: a child process that owns `llama_cpp.Llama`.

Why a process: llama.cpp parses model files and runs kernels in C++; a bad file or an out-of-
memory abort takes the whole process down. Here it takes only the worker, and the app says why.
It also makes a hard stop possible: the client can kill a worker stuck in a long native call.

Protocol: one JSON array per line; commands on the worker's stdin, events on its stdout.
JSON rather than pickle on purpose: the worker parses untrusted files, and a worker subverted
by one must not be able to run code in the app through what it sends back.
  client -> worker: ["load", LoadParams] | ["generate", id, ChatRequest] | ["stop", id]
                    | ["unload"] | ["shutdown"]
  worker -> client: ["loaded", info] | ["load_error", message, detail] | ["notice", id, text]
                    | ["piece", id, text] | ["done", id, stats] | ["error", id, message, detail]
                    | ["unloaded"]
llama.cpp may print to stdout, so the event stream gets a private copy of the stdout file
descriptor and fd 1 is pointed at stderr before llama.cpp is loaded.

Generation runs on the worker's main thread through llama.cpp's C API (batch decode and a C
sampler chain), so each token costs one decode, one sample and one detokenize, with no Python
sampling or logit copies. A reader thread takes "stop" at once: decode checks it between tokens,
and an abort callback, installed only while the prompt is read, checks it between graph nodes.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import json
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, BinaryIO

from engine import llama_build, network
from engine.errors import SchemaRefused
from engine.runtime import chat_template, json_grammar, offload
from engine.runtime.lookup import PromptLookup
from engine.runtime.params import (
    ChatRequest,
    LoadParams,
    chat_request_from_dict,
    load_params_from_dict,
)
from engine.runtime.sampling import TokenPicker
from engine.runtime.stops import StopMatcher

# Longest a generated piece waits before it is sent to the app (20 updates a second, smooth to
# read). Each send wakes threads of the app process, which on a machine with as many decode
# threads as cores stall the decode: measured here (bundled model, 2 cores), decoding through
# the app ran 6 % behind the same loop without it at 30 ms, 1-2 % at 50 ms or more.
PIECE_INTERVAL_S = 0.05
# ggml's type numbers for the KV cache (ggml.h: GGML_TYPE_F16 = 1, Q4_0 = 2, Q8_0 = 8).
_KV_TYPES = {"f16": 1, "q8_0": 8, "q4_0": 2}


def main() -> None:
    """Entry point of the worker process (``python -m engine.runtime.worker``)."""
    network.install("model worker")
    # Ctrl-C in a terminal goes to the whole process group; the CLI turns it into a soft stop,
    # so the worker must not die of it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    events = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    commands = sys.stdin.buffer
    worker = _Worker(events)
    inbox: queue.SimpleQueue[list[Any]] = queue.SimpleQueue()

    def read_commands() -> None:
        while True:
            line = commands.readline()
            if not line:
                os._exit(0)  # the app is gone: nothing left to serve
            msg = json.loads(line)
            if msg[0] == "stop":
                worker.request_stop(msg[1])
                continue
            inbox.put(msg)
            if msg[0] == "shutdown":
                return

    threading.Thread(target=read_commands, name="hearth-worker-commands", daemon=True).start()
    while True:
        msg = inbox.get()
        kind = msg[0]
        try:
            dispatch(worker, msg)
        except Exception as exc:  # a bug of ours: report it and stay up
            worker.send(
                (
                    "error",
                    msg[1] if kind == "generate" else 0,
                    "The model worker hit an internal error.",
                    f"{type(exc).__name__}: {exc}",
                )
            )
        if kind == "shutdown":
            # Exit without interpreter teardown: the reader thread is blocked in stdin.
            os._exit(0)


def dispatch(worker: _Worker, msg: list[Any]) -> None:
    kind = msg[0]
    if kind == "load":
        worker.load(load_params_from_dict(msg[1]))
    elif kind == "generate":
        worker.generate(msg[1], chat_request_from_dict(msg[2]))
    elif kind == "count":
        worker.count(msg[1], chat_request_from_dict(msg[2]))
    elif kind == "unload":
        worker.unload()
        worker.send(("unloaded",))
    elif kind == "shutdown":
        worker.unload()


@contextlib.contextmanager
def extra_buffers(allowed: bool) -> Iterator[None]:
    """With `allowed` False, models loaded meanwhile keep their weights in plain CPU buffers:
    llama.cpp's AMX and repacked kernels (its "extra buffer types") are never used. `Llama`
    takes no argument for it, so the defaults it starts from are changed while it loads."""
    import llama_cpp.llama_cpp as native

    if allowed:
        yield
        return
    defaults = native.llama_model_default_params

    def plain() -> Any:
        params = defaults()
        params.use_extra_bufts = False
        return params

    native.llama_model_default_params = plain
    try:
        yield
    finally:
        native.llama_model_default_params = defaults


class _Worker:
    def __init__(self, events: BinaryIO) -> None:
        self.events = events
        self._send_lock = threading.Lock()
        self.llm: Any = None
        self.params: LoadParams | None = None
        self.cached: list[int] = []  # tokens whose keys/values sit in the KV cache (seq 0)
        self.current = 0  # id of the request being served
        self.stop_upto = 0  # every request id <= this has been asked to stop
        self._batch: Any = None
        self._one: Any = None
        self.flash_attention = False  # as the loaded model runs
        # Kept as attributes so ctypes does not free the callbacks while C holds them.
        self._abort_cb: Any = None
        self._no_abort: Any = None

    def send(self, msg: tuple[Any, ...]) -> None:
        line = json.dumps(msg, ensure_ascii=False).encode("utf-8") + b"\n"
        with self._send_lock:
            self.events.write(line)

    def request_stop(self, req_id: int) -> None:
        self.stop_upto = max(self.stop_upto, req_id)

    def _stopped(self) -> bool:
        return self.stop_upto >= self.current

    # -- loading ---------------------------------------------------------------------------

    def load(self, params: LoadParams) -> None:
        self.unload()
        try:
            import llama_cpp
            from llama_cpp import Llama

            llama_build.load_backends(step_down=params.plain_cpu_kernels)
            threads = params.resolved_threads()
            report = offload.Report(
                "automatic" if params.gpu_layers == offload.AUTO else str(params.gpu_layers)
            )
            if params.gpu_layers == offload.AUTO:
                tries, report.reason, report.advice = offload.automatic(
                    params.model_path, params.context_length, params.kv_cache_type
                )
            else:
                tries = [params.gpu_layers]  # the user's number, as it is
            llm = None
            for layers in tries:
                with offload.LlamaLog() as native, extra_buffers(not params.plain_cpu_kernels):
                    try:
                        llm = Llama(
                            model_path=params.model_path,
                            n_ctx=params.context_length,
                            n_threads=threads,
                            n_threads_batch=threads,
                            n_gpu_layers=layers,
                            n_batch=params.batch_size,
                            n_ubatch=params.batch_size,
                            type_k=_KV_TYPES[params.kv_cache_type],
                            type_v=_KV_TYPES[params.kv_cache_type],
                            flash_attn=params.uses_flash_attention(layers),
                            verbose=False,
                        )
                    except Exception as exc:
                        attempt = offload.Attempt(
                            layers,
                            f"{type(exc).__name__}: {exc}",
                            offload.failed_for_memory(native.lines),
                        )
                        report.attempts.append(attempt)
                        if layers == 0:
                            raise
                        continue
                report.attempts.append(offload.Attempt(layers))
                offload.read_log(native.lines, report)
                break
            if llm is None:  # the user's own number failed: say so rather than guess
                failed = report.attempts[-1]
                raise RuntimeError(
                    f"{failed.layers} GPU layers did not load"
                    + (" (not enough GPU memory)" if failed.memory else "")
                    + "; choose fewer, or Automatic, in Settings > Model"
                )
        except Exception as exc:
            self.send(
                (
                    "load_error",
                    "llama.cpp could not load this model file.",
                    f"{type(exc).__name__}: {exc}",
                )
            )
            return
        self.llm = llm
        self.params = params
        self.flash_attention = params.uses_flash_attention(report.attempts[-1].layers)
        self.cached = []
        self._batch = llama_cpp.llama_batch_init(params.batch_size, 0, 1)
        self._one = llama_cpp.llama_batch_init(1, 0, 1)
        self._abort_cb = llama_cpp.ggml_abort_callback(lambda _data: self._stopped())
        self._no_abort = llama_cpp.ggml_abort_callback()  # a NULL function pointer
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        self.send(
            (
                "loaded",
                {
                    "n_ctx": llm.n_ctx(),
                    "n_ctx_train": llama_cpp.llama_model_n_ctx_train(llm.model),
                    "n_vocab": llm.n_vocab(),
                    "threads": threads,
                    "gpu_offload_supported": bool(llama_cpp.llama_supports_gpu_offload()),
                    "gpu_layers": params.gpu_layers,
                    "offload": report.as_dict(),
                    "add_bos": bool(llama_cpp.llama_vocab_get_add_bos(vocab)),
                    "has_chat_template": bool(llm.metadata.get("tokenizer.chat_template")),
                    "plain_cpu_kernels": params.plain_cpu_kernels,
                    # Of a portable build, the CPU variant this process runs (None: native).
                    "cpu_variant": llama_build.cpu_variant(),
                },
            )
        )

    def unload(self) -> None:
        if self.llm is None:
            return
        import llama_cpp

        for batch in (self._batch, self._one):
            if batch is not None:
                llama_cpp.llama_batch_free(batch)
        self._batch = self._one = None
        self.llm.close()
        self.llm = None
        self.cached = []

    # -- generation ------------------------------------------------------------------------

    def generate(self, req_id: int, request: ChatRequest) -> None:
        self.current = req_id
        if self.llm is None:
            self.send(("error", req_id, "No model is loaded.", None))
            return
        try:
            self._generate(req_id, request)
        except SchemaRefused as exc:  # before any token: the cache is still sound
            self.send(("error", req_id, exc.user_message, "schema_refused"))
        except Exception as exc:  # report, never die: the model stays loaded for the next turn
            self.cached = []
            self._clear_memory()
            self.send(
                (
                    "error",
                    req_id,
                    "Generation failed inside llama.cpp.",
                    f"{type(exc).__name__}: {exc}",
                )
            )

    def count(self, req_id: int, request: ChatRequest) -> None:
        """How many tokens `request` renders to, so callers can fit a context budget."""
        if self.llm is None:
            self.send(("error", req_id, "No model is loaded.", "count without a model"))
            return
        try:
            tokens = self._prompt_tokens(req_id, request)
        except Exception as exc:  # a template error: report it, keep serving
            self.send(
                (
                    "error",
                    req_id,
                    "The prompt could not be rendered.",
                    f"{type(exc).__name__}: {exc}",
                )
            )
            return
        self.send(("count", req_id, len(tokens)))

    def _prompt_tokens(self, req_id: int, request: ChatRequest) -> list[int]:
        import llama_cpp

        llm = self.llm
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        if request.raw_prompt is not None:
            # Special-token text is parsed, so a caller may write a template by hand.
            raw: list[int] = llm.tokenize(
                request.raw_prompt.encode("utf-8"),
                special=True,
                add_bos=bool(llama_cpp.llama_vocab_get_add_bos(vocab)),
            )
            return raw

        def token_text(token: int) -> str:
            if token < 0:
                return ""
            return llm.detokenize([token], special=True).decode("utf-8", errors="replace")

        rendered = chat_template.render(
            llm.metadata.get("tokenizer.chat_template"),
            request.template_messages(),
            bos_token=token_text(llm.token_bos()),
            eos_token=token_text(llm.token_eos()),
        )
        if rendered.notice:
            self.send(("notice", req_id, rendered.notice))
        # A real template writes the BOS token itself; the fallback leaves it to the vocab.
        add_bos = rendered.used_fallback and bool(llama_cpp.llama_vocab_get_add_bos(vocab))
        tokens: list[int] = llm.tokenize(
            rendered.text.encode("utf-8"), add_bos=add_bos, special=True
        )
        return tokens

    def _clear_memory(self) -> None:
        import llama_cpp

        if self.llm is not None:
            llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(self.llm.ctx), True)

    def _reuse_prefix(self, tokens: list[int]) -> int:
        """Keep the cached prefix shared with `tokens`; return how many tokens it covers."""
        import llama_cpp

        n = 0
        limit = min(len(self.cached), len(tokens) - 1)  # the last token is always evaluated
        while n < limit and self.cached[n] == tokens[n]:
            n += 1
        if n < len(self.cached):
            mem = llama_cpp.llama_get_memory(self.llm.ctx)
            if not llama_cpp.llama_memory_seq_rm(mem, 0, n, -1):
                # Some memory types cannot drop a suffix; start from scratch then.
                llama_cpp.llama_memory_clear(mem, True)
                n = 0
            del self.cached[n:]
        return n

    def _prefill(self, tokens: list[int]) -> str | None:
        """Evaluate `tokens` after the cached prefix. Returns a stop reason if it did not finish."""
        import llama_cpp

        assert self.params is not None
        ctx = self.llm.ctx
        batch = self._batch
        step = self.params.batch_size
        llama_cpp.llama_set_abort_callback(ctx, self._abort_cb, None)
        try:
            for start in range(0, len(tokens), step):
                if self._stopped():
                    return "cancelled"
                chunk = tokens[start : start + step]
                pos0 = len(self.cached)
                for i, tok in enumerate(chunk):
                    batch.token[i] = tok
                    batch.pos[i] = pos0 + i
                    batch.n_seq_id[i] = 1
                    batch.seq_id[i][0] = 0
                    batch.logits[i] = 0
                batch.logits[len(chunk) - 1] = 1
                batch.n_tokens = len(chunk)
                rc = llama_cpp.llama_decode(ctx, batch)
                if rc != 0:
                    # llama.cpp already dropped the failed micro-batch; drop the rest of this
                    # call too so our record and the KV cache agree.
                    mem = llama_cpp.llama_get_memory(ctx)
                    llama_cpp.llama_memory_seq_rm(mem, 0, pos0, -1)
                    if rc == 2:
                        return "cancelled"
                    if rc == 1:
                        return "context_full"
                    raise RuntimeError(f"llama_decode returned {rc} while reading the prompt")
                self.cached.extend(chunk)
        finally:
            llama_cpp.llama_set_abort_callback(ctx, self._no_abort, None)
        return None

    def _generate(self, req_id: int, request: ChatRequest) -> None:
        import llama_cpp

        llm = self.llm
        t0 = time.perf_counter()
        schema = request.sampling.json_schema
        grammar = None if schema is None else json_grammar.grammar_for(schema)
        tokens = self._prompt_tokens(req_id, request)
        n_ctx = llm.n_ctx()
        if len(tokens) >= n_ctx:
            self.send(
                (
                    "error",
                    req_id,
                    f"The conversation ({len(tokens):,} tokens) does not fit in the model's "
                    f"context window ({n_ctx:,} tokens). Start a new chat or raise the "
                    f"context length.",
                    "prompt_too_long",
                )
            )
            return
        n_cached = self._reuse_prefix(tokens)
        t_prefill = time.perf_counter()
        stop_reason = self._prefill(tokens[n_cached:])
        prefill_s = time.perf_counter() - t_prefill
        stats: dict[str, Any] = {
            "prompt_tokens": len(tokens),
            "cached_tokens": n_cached,
            "evaluated_tokens": len(tokens) - n_cached,
            "prefill_s": prefill_s,
            "generated_tokens": 0,
            "first_token_s": None,
            "decode_s": 0.0,
        }
        if stop_reason is not None:
            stats.update(stop_reason=stop_reason, total_s=time.perf_counter() - t0)
            self.send(("done", req_id, stats))
            return

        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        picker = TokenPicker(llama_cpp, llm.ctx, vocab, request.sampling, grammar)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stops = StopMatcher(request.sampling.stop)
        one = self._one
        one.n_tokens = 1
        one.n_seq_id[0] = 1
        one.seq_id[0][0] = 0
        one.logits[0] = 1
        batch = self._batch
        assert self.params is not None
        # Drafts from the prompt (engine/runtime/lookup.py); not under a grammar, which
        # samples token by token through its own sampler.
        # Only with flash attention: without it, llama.cpp's CPU attention gives a token
        # evaluated in a batch logits up to 0.8 away from the same token evaluated alone
        # (measured here), so a checked draft could change the answer; with it, the very
        # same bits, and drafting changes no word (tests/engine/test_runtime.py).
        draft_room = min(self.params.lookup_draft, self.params.batch_size - 1)
        if not self.flash_attention or grammar is not None:
            draft_room = 0
        lookup = PromptLookup(tokens, draft_room) if draft_room > 0 else None
        buf = ctypes.create_string_buffer(256)
        generated = 0
        t_first: float | None = None
        t_sent = 0.0
        pending: list[str] = []
        reason = "length"

        def keep(token: int) -> str | None:
            """Show a sampled token; the reason to end the answer there, if any."""
            nonlocal buf, generated, t_first, t_sent
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                return "eos"
            generated += 1
            n = llama_cpp.llama_token_to_piece(vocab, token, buf, len(buf), 0, False)
            if n < 0:
                buf = ctypes.create_string_buffer(-n)
                n = llama_cpp.llama_token_to_piece(vocab, token, buf, len(buf), 0, False)
            text = stops.feed(decoder.decode(buf.raw[:n]))
            if text:
                pending.append(text)
                now = time.perf_counter()
                if t_first is None:
                    t_first = now
                # The first piece goes out at once (time to first token); later ones are
                # sent at most every PIECE_INTERVAL_S: on a machine with as many threads
                # as cores, every wake-up of the app process costs the decode threads.
                if now - t_sent >= PIECE_INTERVAL_S:
                    self.send(("piece", req_id, "".join(pending)))
                    pending.clear()
                    t_sent = now
            if stops.stopped:
                return "stop_string"
            if generated >= request.sampling.max_tokens:
                return "length"
            return None

        try:
            token = picker.pick(-1) if request.sampling.max_tokens > 0 else -1
            # Decode speed counts every token from here, shown or not: a model may write
            # tokens with no text (control tokens), and timing from the first text would
            # credit their time to the visible ones.
            t_decode = time.perf_counter()
            while token >= 0:
                if self._stopped():
                    reason = "cancelled"
                    break
                ended = keep(token)
                if ended is not None:
                    reason = ended
                    break
                if len(self.cached) >= n_ctx:
                    reason = "context_full"
                    break
                room = n_ctx - len(self.cached) - 1
                if lookup is not None:
                    lookup.add(token)  # the draft guesses what follows it
                draft = lookup.draft()[:room] if lookup is not None else []
                if not draft:
                    one.token[0] = token
                    one.pos[0] = len(self.cached)
                    t_step = time.perf_counter()
                    rc = llama_cpp.llama_decode(llm.ctx, one)
                    if lookup is not None:
                        lookup.timed(1, time.perf_counter() - t_step)
                    if rc != 0:
                        raise RuntimeError(f"llama_decode returned {rc} while generating")
                    self.cached.append(token)
                    token = picker.pick(-1)
                    continue
                # The token and the draft in one batch; keep the draft while the model,
                # sampling at each place, agrees with it.
                assert lookup is not None
                pos0 = len(self.cached)
                for i, tok in enumerate([token, *draft]):
                    batch.token[i] = tok
                    batch.pos[i] = pos0 + i
                    batch.n_seq_id[i] = 1
                    batch.seq_id[i][0] = 0
                    batch.logits[i] = 1
                batch.n_tokens = len(draft) + 1
                t_step = time.perf_counter()
                rc = llama_cpp.llama_decode(llm.ctx, batch)
                if rc != 0:
                    raise RuntimeError(f"llama_decode returned {rc} while generating")
                lookup.timed(len(draft) + 1, time.perf_counter() - t_step)
                self.cached.append(token)
                matched = kept = 0
                following: int | None = None
                for i, guess in enumerate(draft):
                    sampled = picker.pick(i)
                    if sampled != guess:
                        following = sampled
                        break
                    matched += 1
                    ended = keep(guess)
                    if ended is not None:
                        reason = ended
                        break
                    kept += 1
                    self.cached.append(guess)
                    lookup.add(guess)
                lookup.judge(len(draft), matched)
                if kept < len(draft):  # the cache holds what was kept, as it would unguessed
                    mem = llama_cpp.llama_get_memory(llm.ctx)
                    llama_cpp.llama_memory_seq_rm(mem, 0, len(self.cached), -1)
                if ended is not None:
                    break
                token = following if following is not None else picker.pick(len(draft))
        finally:
            picker.free()
        if lookup is not None and lookup.drafted:
            stats.update(drafted_tokens=lookup.drafted, accepted_tokens=lookup.accepted)
        tail = decoder.decode(b"", final=True)
        if reason != "stop_string":
            tail = stops.feed(tail) + stops.flush()
        tail = "".join(pending) + tail
        if tail:
            self.send(("piece", req_id, tail))
        t_end = time.perf_counter()
        stats.update(
            generated_tokens=generated,
            first_token_s=None if t_first is None else t_first - t0,
            decode_s=0.0 if generated == 0 else t_end - t_decode,
            stop_reason=reason,
            total_s=t_end - t0,
        )
        self.send(("done", req_id, stats))


if __name__ == "__main__":
    main()
