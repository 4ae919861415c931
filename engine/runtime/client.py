"""The client side of the model worker: load a model, stream answers, stop them.

`ModelRuntime` is the one owner of a model in the app. It starts the worker process, validates a
model file before the worker may open it, and turns the worker's messages into plain events:

    runtime = ModelRuntime(admit=engine.models.gate(settings, paths))
    runtime.load(engine.models.load_params(model_id, settings, paths))
    for event in runtime.stream_chat(request):   # TextPiece | Notice ..., then one Done
        ...

A LoadParams with a `server` (a model on an OpenAI-compatible server, `engine.remote`) is
answered through the `remote` object given to the runtime instead of the worker: the same
events, the same one-answer-at-a-time turn, the same stop.

With `idle_unload_after_s` (a callable, so a changed setting applies at once), a model left
unused that long is unloaded and its worker process ended, giving its memory back; the next
request loads it again (callers that load explicitly show "loading"), and `idle_unloaded` says
which model it was meanwhile.

`stop()` may be called from any thread (a Stop button, Ctrl-C). It asks the worker to stop
softly, keeping the model loaded; if the worker has not finished within `hard_stop_after_s`
(a native call that cannot be interrupted), the worker is killed and the model is reloaded
on the next request. A worker that dies on its own ends the stream with `WorkerCrashed`,
with one exception: a crash in native code (SIGSEGV, SIGILL, SIGBUS) in the first answer after
a load, before any text, is taken for llama.cpp's fast CPU kernels failing on this processor
(its AMX kernel on Sapphire Rapids Xeons, llama.cpp issue #20824). The model is loaded again
once on llama.cpp's plain kernels (`LoadParams.plain_cpu_kernels`), which this runtime keeps
for every later load, and the same request is answered there; a second crash is final. With
`kernel_memory` (a file), the choice is also kept for later starts of the same llama.cpp
build (kernel_memory.py), so the app does not crash once per start on such a processor.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO, Any, Protocol

from engine import gguf, workers
from engine.errors import (
    Cancelled,
    GenerationError,
    ModelLoadError,
    PromptTooLong,
    SchemaRefused,
    WorkerCrashed,
)
from engine.runtime import kernel_memory as kernel_memory_mod
from engine.runtime.events import Done, Event, GenerationStats, Notice, TextPiece
from engine.runtime.params import ChatRequest, LoadParams, chat_request_to_dict

log = logging.getLogger(__name__)


class RemoteAnswers(Protocol):
    """What the runtime needs for models on servers; `engine.remote.RemoteModels` is it."""

    def load(self, params: LoadParams) -> tuple[dict[str, Any], dict[str, Any]]: ...

    def stream(
        self, params: LoadParams, request: ChatRequest, stop: threading.Event
    ) -> Generator[Event, None, None]: ...

    def estimate_tokens(self, request: ChatRequest) -> int: ...


@dataclass(frozen=True)
class LoadedModel:
    params: LoadParams
    file: dict[str, Any]  # gguf summary: name, architecture, parameters, quantization, ...
    runtime: dict[str, Any]  # what llama.cpp reports: n_ctx, threads, gpu offload support

    @property
    def name(self) -> str:
        return str(self.file.get("name") or Path(self.params.model_path).stem)


# Signals of a crash in native code, which llama.cpp's plain CPU kernels may not hit. SIGKILL
# (memory) and SIGABRT (llama.cpp's own checks) are not retried: they would only repeat.
_KERNEL_CRASHES = ("SIGSEGV", "SIGILL", "SIGBUS")

# Worker error codes for requests refused before any token, raised as their own errors so
# callers (the API's status codes) can tell them apart; any other code is a GenerationError.
_REFUSALS: dict[str, type[GenerationError]] = {
    "prompt_too_long": PromptTooLong,
    "schema_refused": SchemaRefused,
}


class ModelRuntime:
    """Owns the model worker process. Thread-safe; one answer at a time (others queue).

    `admit(model_path)` runs before every load and raises when that file may not run here:
    the app passes `engine.models.gate(...)`, the machine policy's allow-list, so a caller
    that built LoadParams without `engine.models.load_params` is held to it all the same."""

    def __init__(
        self,
        *,
        admit: Callable[[str], None],
        hard_stop_after_s: float = 0.25,
        load_timeout_s: float = 900.0,
        remote: RemoteAnswers | None = None,
        idle_unload_after_s: Callable[[], float] | None = None,
        kernel_memory: Path | None = None,
    ) -> None:
        self._admit = admit
        self._kernel_memory = kernel_memory
        self._remote = remote
        self._remote_stop = threading.Event()  # set by stop() during a remote answer
        self._idle_after = idle_unload_after_s
        self._last_used = time.monotonic()
        self._closing = threading.Event()
        self._watcher: threading.Thread | None = None
        self.idle_unloaded: LoadedModel | None = None  # unloaded for idleness, until reloaded
        self.hard_stop_after_s = hard_stop_after_s
        self.load_timeout_s = load_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._events: queue.Queue[list[Any] | None] = queue.Queue()
        self._send_lock = threading.Lock()
        self._turn = threading.Lock()  # held for a whole load or answer
        self._loaded: LoadedModel | None = None
        self._reload_needed = False  # set after we killed the worker for a hard stop
        self._next_id = 0
        self._active_id = 0
        self._stop_at: float | None = None
        # Set once llama.cpp's fast CPU kernels crashed here: every later load uses plain ones.
        self.plain_cpu_kernels = (
            kernel_memory is not None and kernel_memory_mod.remembered(kernel_memory) is not None
        )
        self._answers_since_load = 0
        self._crashed: LoadedModel | None = None  # the model a worker crash unloaded

    # -- state -------------------------------------------------------------------------

    @property
    def loaded(self) -> LoadedModel | None:
        return self._loaded

    def holds(self, params: LoadParams) -> bool:
        """`params` is the model loaded now (the plain kernels the runtime may have added
        after a crash do not make it another: loading it again would change nothing)."""
        loaded = self._loaded
        return loaded is not None and _same_model(loaded, params)

    @property
    def worker_pid(self) -> int | None:
        return self._proc.pid if self._alive() and self._proc is not None else None

    # -- lifecycle ---------------------------------------------------------------------

    def load(self, params: LoadParams) -> LoadedModel:
        """Admit and validate the file, then load it in the worker. Raises ModelNotAllowed,
        InvalidModelFile, ModelLoadError, WorkerCrashed or Cancelled; for a model on a
        server, ServerError (unreachable, token refused, not allowed) or ModelNotFound."""
        if params.remote:
            with self._turn:
                return self._load_remote(params)
        self._admit(params.model_path)  # fails before anything waits for the turn
        info = gguf.inspect(params.model_path)  # before llama.cpp ever sees the file
        with self._turn:
            self._stop_at = None
            return self._load_locked(params, info.summary())

    def _load_locked(self, params: LoadParams, summary: dict[str, Any]) -> LoadedModel:
        self._admit(params.model_path)  # again: every load, reloads too, passes the policy
        if self.plain_cpu_kernels:
            params = replace(params, plain_cpu_kernels=True)
        self._loaded = None
        self._answers_since_load = 0
        self._reload_needed = False
        self._ensure_worker()
        self._send(["load", asdict(params)])
        deadline = time.monotonic() + self.load_timeout_s
        name = Path(params.model_path).name
        while True:
            msg = self._recv(deadline, doing=f"loading “{name}”")
            if msg is None:
                if self._stop_at is not None:
                    self._kill_worker()
                    raise Cancelled()
                self._kill_worker()
                raise ModelLoadError(
                    f"Loading “{name}” took longer than "
                    f"{self.load_timeout_s:.0f} s and was abandoned."
                )
            if msg[0] == "loaded":
                self._loaded = LoadedModel(params, summary, msg[1])
                self._used()
                log.info("model loaded: %s (%s)", name, msg[1])
                return self._loaded
            if msg[0] in ("load_error", "error"):
                raise ModelLoadError(f"“{name}” could not be loaded: {msg[-2]}", msg[-1])

    def _load_remote(self, params: LoadParams) -> LoadedModel:
        """With the turn held: ask the server about the model; the worker is not involved."""
        if self._remote is None:
            raise ModelLoadError("This Hearth was started without model servers.")
        summary, facts = self._remote.load(params)
        self._loaded = LoadedModel(params, summary, facts)
        log.info("server model ready: %s", params.model_path)
        return self._loaded

    def _used(self) -> None:
        """A load or an answer just ended: the idle clock starts again."""
        self._last_used = time.monotonic()
        self.idle_unloaded = None
        if self._idle_after is not None and self._watcher is None and not self._closing.is_set():
            self._watcher = threading.Thread(
                target=self._watch_idle, daemon=True, name="hearth-idle-unload"
            )
            self._watcher.start()

    def _watch_idle(self) -> None:
        assert self._idle_after is not None
        while True:
            limit = float(self._idle_after())
            if self._closing.wait(max(0.05, min(5.0, limit / 10 if limit > 0 else 5.0))):
                return
            loaded = self._loaded
            if limit <= 0 or loaded is None or loaded.params.remote:
                continue  # a server's model holds no memory here
            if time.monotonic() - self._last_used < limit:
                continue
            if not self._turn.acquire(blocking=False):
                continue  # an answer or a load is running: not idle
            try:
                if self._loaded is loaded and time.monotonic() - self._last_used >= limit:
                    self._unload_idle(loaded, limit)
            finally:
                self._turn.release()

    def _unload_idle(self, loaded: LoadedModel, limit: float) -> None:
        """With the turn held: end the worker (all of its memory, not just the model's)."""
        log.info("model unused for %.0f s: unloading %s", limit, loaded.name)
        self._end_worker()
        self.idle_unloaded = loaded

    def unload(self) -> None:
        with self._turn:
            if self._loaded is not None and self._alive():
                self._send(["unload"])
                self._recv(time.monotonic() + 30, doing="unloading the model")
            self._loaded = None

    def close(self) -> None:
        """Stop the worker process (politely, then by force)."""
        self._closing.set()
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join(5)
        self.stop()
        with self._turn:
            self._end_worker()

    def _end_worker(self) -> None:
        """With the turn held: ask the worker to exit, kill it if it does not, forget the model."""
        if self._alive():
            try:
                self._send(["shutdown"])
                assert self._proc is not None
                self._proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self._kill_worker()
        self._loaded = None

    def __enter__(self) -> ModelRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- generation --------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the current load or answer to stop. Safe from any thread; idempotent."""
        if self._stop_at is None:
            self._stop_at = time.monotonic()
        self._remote_stop.set()
        if self._active_id and self._alive():
            with contextlib.suppress(OSError):
                self._send(["stop", self._active_id])

    def stream_chat(
        self, request: ChatRequest, *, model: LoadParams | None = None
    ) -> Generator[Event, None, None]:
        """Yield TextPiece and Notice events, then one Done with the stats.

        With `model`, that model answers: loaded first, in the same turn, if another one (or
        the same with other parameters) is loaded. Two callers sharing the runtime (the window
        and the API server) can then never get an answer from each other's model.
        Closing the generator early stops the answer the same way `stop()` does.
        """
        with self._turn:
            target = self._target(model)
            if target is not None and target.remote:
                yield from self._stream_remote(target, request)
                return
            began = False
            try:
                for event in self._stream_local(request, model):
                    began = began or isinstance(event, TextPiece)
                    yield event
            except WorkerCrashed as crash:
                crashed = self._crashed
                if began or crashed is None or not self._kernels_may_have_crashed(crash):
                    raise
                log.warning(
                    "the model worker crashed (%s) in its first answer after loading %s: "
                    "loading it again on llama.cpp's plain CPU kernels",
                    crash.signal_name,
                    crashed.name,
                )
                self.plain_cpu_kernels = True
                if self._kernel_memory is not None:
                    kernel_memory_mod.remember(self._kernel_memory, crash.signal_name)
                yield Notice(
                    "llama.cpp's fast kernels crashed on this processor, so Hearth loaded the "
                    "model again on its plain ones: the same answers, more slowly."
                )
                self._load_locked(crashed.params, crashed.file)
                try:
                    yield from self._stream_local(request, None)
                except WorkerCrashed as again:
                    raise WorkerCrashed(
                        "llama.cpp crashed twice on this processor, on its fast kernels and "
                        "again on its plain ones, so this model cannot answer here. Your "
                        "question is kept. " + _crash_advice(again.signal_name),
                        again.detail,
                        again.signal_name,
                    ) from crash

    def _kernels_may_have_crashed(self, crash: WorkerCrashed) -> bool:
        """A native crash in the first answer after a load, with the fast kernels in use."""
        return (
            crash.signal_name in _KERNEL_CRASHES
            and self._answers_since_load == 0
            and not self.plain_cpu_kernels
        )

    def _stream_local(
        self, request: ChatRequest, model: LoadParams | None
    ) -> Generator[Event, None, None]:
        """With the turn held: one answer from the worker."""
        req_id = self._active_id = self._begin_request(model)
        t0 = time.perf_counter()
        t_first: float | None = None
        finished = False
        try:
            self._send(["generate", req_id, chat_request_to_dict(request)])
            # Content reaches the log only when the user turned on debug logging.
            debug = log.isEnabledFor(logging.DEBUG)
            if debug:
                log.debug(
                    "request %d: %s",
                    req_id,
                    json.dumps(chat_request_to_dict(request), ensure_ascii=False),
                )
            pieces: list[str] = []
            received = 0  # pieces seen: what a hard stop, which gets no stats, can count
            while True:
                msg = self._recv(None, doing="generating an answer")
                if msg is None:  # a soft stop was not enough: stop hard
                    self._hard_stop()
                    finished = True
                    yield Done(_cancelled_stats(t0, t_first, received))
                    return
                kind = msg[0]
                if kind in ("piece", "notice", "done", "error") and msg[1] != req_id:
                    continue  # a late message from an earlier, abandoned request
                if kind == "piece":
                    received += 1
                    if t_first is None:
                        t_first = time.perf_counter()
                    if debug:
                        pieces.append(msg[2])
                    yield TextPiece(msg[2])
                elif kind == "notice":
                    yield Notice(msg[2])
                elif kind == "done":
                    finished = True
                    self._answers_since_load += 1
                    if debug:
                        log.debug("answer %d: %r", req_id, "".join(pieces))
                    yield Done(_stats(msg[2], t0, t_first))
                    return
                elif kind == "error":
                    finished = True
                    known = _REFUSALS.get(msg[3])
                    if known is not None:
                        raise known(msg[2])
                    raise GenerationError(msg[2], msg[3])
        finally:
            self._active_id = 0
            self._used()
            if not finished:  # the caller closed the generator: stop and drain
                self._abandon(req_id)

    def _target(self, model: LoadParams | None) -> LoadParams | None:
        """The model a request is for: the one named, else the one loaded."""
        if model is not None:
            return model
        return self._loaded.params if self._loaded is not None else None

    def _stream_remote(
        self, params: LoadParams, request: ChatRequest
    ) -> Generator[Event, None, None]:
        """With the turn held: the answer of a model on a server."""
        if self._loaded is None or self._loaded.params != params:
            self._load_remote(params)
        assert self._remote is not None
        self._stop_at = None
        self._remote_stop.clear()
        yield from self._remote.stream(params, request, self._remote_stop)

    def _begin_request(self, model: LoadParams | None = None) -> int:
        """With the turn lock held: a loaded, live worker (with `model`, that model) and a
        fresh request id."""
        if model is not None and not self.holds(model):
            self._stop_at = None
            self._load_locked(model, gguf.inspect(model.model_path).summary())
        if self._loaded is None and self.idle_unloaded is not None:
            # Unloaded while idle: the user did nothing wrong, so load it again.
            idle = self.idle_unloaded
            self._load_locked(idle.params, idle.file)
        if self._loaded is None:
            raise ModelLoadError("No model is loaded. Load a model first.")
        self._stop_at = None
        if self._reload_needed or not self._alive():
            # We killed the worker for a hard stop: the user did nothing wrong, so reload.
            self._load_locked(self._loaded.params, self._loaded.file)
        self._next_id += 1
        return self._next_id

    def count_tokens(self, request: ChatRequest, *, model: LoadParams | None = None) -> int:
        """Tokens the loaded model's chat template makes of `request` (prompt only); with
        `model`, that model's (loaded first if need be)."""
        with self._turn:
            target = self._target(model)
            if target is not None and target.remote and self._remote is not None:
                return self._remote.estimate_tokens(request)
            req_id = self._begin_request(model)
            self._send(["count", req_id, chat_request_to_dict(request)])
            while True:
                msg = self._recv(time.monotonic() + 60, doing="counting prompt tokens")
                if msg is None:
                    raise GenerationError("Counting the prompt's tokens took too long.")
                if msg[1] != req_id or msg[0] == "notice":
                    continue
                if msg[0] == "count":
                    return int(msg[2])
                if msg[0] == "error":
                    raise GenerationError(msg[2], msg[3])

    def _abandon(self, req_id: int) -> None:
        if not self._alive():
            return
        self._stop_at = time.monotonic()
        try:
            self._send(["stop", req_id])
            while True:
                msg = self._recv(None, doing="stopping")
                if msg is None:
                    self._hard_stop()
                    return
                if msg[0] in ("done", "error") and msg[1] == req_id:
                    return
        except WorkerCrashed:
            return

    def _hard_stop(self) -> None:
        """A soft stop was not enough: kill the worker; the next answer reloads the model."""
        log.info("worker did not stop in %.2f s; killing it", self.hard_stop_after_s)
        self._kill_worker()
        self._reload_needed = True

    # -- process plumbing ----------------------------------------------------------------

    def _alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _ensure_worker(self) -> None:
        if self._alive():
            return
        self._kill_worker()
        argv = workers.command("engine.runtime.worker")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,
            env=env,
            close_fds=True,
        )
        events: queue.Queue[list[Any] | None] = queue.Queue()
        assert proc.stdout is not None
        threading.Thread(
            target=_read_events,
            args=(proc.stdout, events),
            daemon=True,
            name=f"hearth-worker-events-{proc.pid}",
        ).start()
        self._proc, self._events = proc, events
        log.info("model worker started (pid %s)", proc.pid)

    def _kill_worker(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            log.error("model worker %s did not exit after SIGKILL", proc.pid)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def _send(self, msg: list[Any]) -> None:
        line = json.dumps(msg, ensure_ascii=False).encode("utf-8") + b"\n"
        with self._send_lock:
            proc = self._proc
            if proc is None or proc.stdin is None:
                raise OSError("the model worker is not running")
            proc.stdin.write(line)
            proc.stdin.flush()

    def _stop_deadline(self) -> float | None:
        return None if self._stop_at is None else self._stop_at + self.hard_stop_after_s

    def _recv(self, deadline: float | None, *, doing: str) -> list[Any] | None:
        """Next message from the worker; None once `deadline` (monotonic) or the hard-stop
        deadline of a pending stop() passes. Raises WorkerCrashed when the worker dies."""
        while True:
            limits = [d for d in (deadline, self._stop_deadline()) if d is not None]
            # Wake up now and then: stop() from another thread may set a deadline meanwhile.
            timeout = 0.05 if not limits else min(0.05, max(0.0, min(limits) - time.monotonic()))
            try:
                msg = self._events.get(timeout=timeout)
            except queue.Empty:
                if limits and time.monotonic() >= min(limits):
                    return None
                continue
            if msg is not None:
                return msg
            proc = self._proc
            code = None
            if proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    code = proc.wait(2)
            self._kill_worker()
            self._crashed, self._loaded = self._loaded, None
            raise WorkerCrashed(
                f"The model worker stopped unexpectedly while {doing} "
                f"({describe_exit(code)}). Hearth is fine; load the model again to go on.",
                f"exit code {code}",
                _signal_name(code),
            )


def _read_events(stream: IO[bytes], events: queue.Queue[list[Any] | None]) -> None:
    """Worker stdout -> queue, one JSON message per line; None marks the end of the stream."""
    try:
        for line in stream:
            try:
                msg = json.loads(line)
            except ValueError:
                log.warning("ignoring a malformed line from the model worker")
                continue
            if isinstance(msg, list) and msg and isinstance(msg[0], str):
                events.put(msg)
    except (OSError, ValueError):
        pass
    events.put(None)


def _same_model(loaded: LoadedModel, wanted: LoadParams) -> bool:
    """The loaded model is the one asked for (plain kernels, which the runtime may have
    added after a crash, do not make it another)."""
    return replace(loaded.params, plain_cpu_kernels=wanted.plain_cpu_kernels) == wanted


def _signal_name(code: int | None) -> str | None:
    if code is None or code >= 0:
        return None
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _crash_advice(signal_name: str | None) -> str:
    """What a person can do after llama.cpp crashed even on its plain kernels."""
    if signal_name == "SIGILL" and not getattr(sys, "frozen", False):
        return (
            "This copy of llama.cpp was built for another processor: run Hearth's set-up "
            "again (scripts/run) to build it for this one."
        )
    return (
        "`hearth doctor` shows what this processor and llama.cpp can do: send it to whoever "
        "looks after Hearth here."
    )


def describe_exit(code: int | None) -> str:
    """How a worker process ended, in words: "SIGSEGV: a crash in native code"."""
    if code is None:
        return "no exit status"
    if code < 0:
        name = _signal_name(code) or ""
        hints = {
            "SIGKILL": "killed, possibly for lack of memory",
            "SIGSEGV": "a crash in native code",
            "SIGABRT": "llama.cpp aborted",
            "SIGILL": "an instruction this processor does not have",
        }
        return f"{name}: {hints[name]}" if name in hints else name
    return f"exit code {code}"


def _stats(raw: dict[str, Any], t0: float, t_first: float | None) -> GenerationStats:
    generated = int(raw.get("generated_tokens", 0))
    decode_s = float(raw.get("decode_s") or 0.0)
    prefill_s = float(raw.get("prefill_s") or 0.0)
    evaluated = int(raw.get("evaluated_tokens", 0))
    return GenerationStats(
        prompt_tokens=int(raw.get("prompt_tokens", 0)),
        cached_tokens=int(raw.get("cached_tokens", 0)),
        generated_tokens=generated,
        time_to_first_token_s=(t_first - t0) if t_first is not None else 0.0,
        prefill_tokens_per_s=evaluated / prefill_s if prefill_s > 0 else 0.0,
        tokens_per_s=(generated - 1) / decode_s if generated > 1 and decode_s > 0 else 0.0,
        total_s=time.perf_counter() - t0,
        stop_reason=raw.get("stop_reason", "eos"),
        drafted_tokens=int(raw.get("drafted_tokens", 0)),
        accepted_tokens=int(raw.get("accepted_tokens", 0)),
    )


def _cancelled_stats(t0: float, t_first: float | None, pieces: int) -> GenerationStats:
    """Stats for an answer stopped hard: the worker was killed before it could count, so
    the pieces received stand in for tokens (the worker sends one per token, or fewer when
    it holds text back to match a stop string)."""
    now = time.perf_counter()
    speed = (pieces - 1) / (now - t_first) if t_first is not None and pieces > 1 else 0.0
    ttft = (t_first - t0) if t_first is not None else 0.0
    return GenerationStats(0, 0, pieces, ttft, 0.0, speed, now - t0, "cancelled")
