"""Builds the services in a fixed, logged order and hands them to the CLI or the GUI.

No globals: every entry point calls `build()` once and passes the result down.
"""

from __future__ import annotations

import logging
import logging.handlers
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from engine import models, policy
from engine import paths as paths_module
from engine.chats import ChatStore, open_store
from engine.paths import DataPaths
from engine.policy import Policy
from engine.runtime import ModelRuntime, kernel_memory
from engine.settings import Settings
from engine.vault import EncryptionUnavailable

if TYPE_CHECKING:  # each is built on first use, off the start-up path
    from engine.api.server import ApiServer
    from engine.conversation import Conversations
    from engine.documents.library import Documents
    from engine.erase import Area

log = logging.getLogger("hearth")


@dataclass
class Services:
    """What the CLI and the window work with; ui/services.py says what the window needs of
    it."""

    paths: DataPaths
    settings: Settings
    runtime: ModelRuntime
    policy: Policy | None = None
    isolate_documents: bool = False  # the GUI: heavy document work in child processes
    started: float = field(default_factory=time.time)  # "connections since start" counts from here
    chats_problem: str | None = None  # why the saved chat history could not be opened
    _documents: Documents | None = None
    _chats: ChatStore | None = None
    _conversations: Conversations | None = None
    _api: ApiServer | None = None

    @property
    def documents(self) -> Documents:
        """The documents service (`engine.documents.library.DocumentLibrary`), built on first
        use: numpy, tokenizers and later torch and chromadb stay off the start path."""
        if self._documents is None:
            from engine.documents.library import DocumentLibrary

            library = DocumentLibrary(self.paths.data / "documents", self.settings)
            if self.isolate_documents:
                from engine.documents.isolated import IsolatedLibrary

                self._documents = IsolatedLibrary(library)
            else:
                self._documents = library
            log.info("documents service ready (%s)", library.folder)
        return self._documents

    @property
    def chats(self) -> ChatStore:
        if self._chats is None:
            try:
                self._chats = open_store(
                    self.paths.data / "chats.sqlite",
                    self.paths,
                    bool(self.settings.get("privacy.encrypt_chats")),
                )
            except EncryptionUnavailable as exc:
                # Fail closed: the history is never written in clear. This session's chats
                # live in memory only, and the window says so.
                log.error("chat history not opened: %s (%s)", exc.user_message, exc.detail)
                self.chats_problem = (
                    f"{exc.user_message} Your saved chats are untouched and come back once "
                    "it can be opened; chats in this session are kept in memory only and will "
                    "not be saved."
                )
                self._chats = ChatStore(Path(":memory:"))
            days = int(self.settings.get("privacy.retention_days"))
            if days:
                self._chats.delete_older_than(days)
            from engine import answer_audit

            answer_audit.apply_retention_days(
                self.paths, int(self.settings.get("audit.retention_days"))
            )
        return self._chats

    @property
    def conversations(self) -> Conversations:
        """`engine.conversation.Conversations` over the chat store and the one runtime."""
        if self._conversations is None:
            from engine.conversation import Conversations

            self._conversations = Conversations(
                self.chats, self.runtime, self.settings, self.paths, lambda: self.documents
            )
        return self._conversations

    @property
    def api_running(self) -> bool:
        return self._api is not None and bool(self._api.running)

    def api_server(self, host: str | None = None, port: int | None = None) -> ApiServer:
        """The API server (`engine.api.server.ApiServer`), not started. It shares this
        runtime: the window and API clients take turns with one loaded model. A stopped
        server is rebuilt, so changed settings apply to the next start."""
        if self._api is None or not self._api.running:
            from engine.api.backend import Backend
            from engine.api.server import ApiServer

            backend = Backend(self.runtime, self.settings, self.paths, lambda: self.documents)
            self._api = ApiServer(backend, self.settings, self.paths, host=host, port=port)
        return self._api

    def erase_all_data(self) -> list[Area]:
        """Stop everything that holds Hearth's files, then delete them all (engine/erase.py).
        The log file handlers go too, so nothing writes a new log into the emptied folders."""
        from engine import erase

        self.close()
        root = logging.getLogger()
        for handler in [
            h
            for h in root.handlers
            if getattr(h, "_hearth", False) and isinstance(h, logging.FileHandler)
        ]:
            root.removeHandler(handler)
            handler.close()
        return erase.erase_all(self.paths)

    def close(self) -> None:
        if self._api is not None:
            self._api.stop()
        self.runtime.close()
        if self._documents is not None:
            self._documents.close()
        if self._chats is not None:
            self._chats.close()


def configure_logging(paths: DataPaths, verbose: bool = False, debug: bool = False) -> None:
    """Log to a rotating file in the logs folder, and warnings to stderr. Prompts, answers and
    document text are logged only at DEBUG: `--verbose` or the privacy.debug_logging setting."""
    root = logging.getLogger()
    if any(getattr(h, "_hearth", False) for h in root.handlers):
        return
    root.setLevel(logging.DEBUG if verbose or debug else logging.INFO)
    file_handler = logging.handlers.RotatingFileHandler(
        paths.logs / "hearth.log", maxBytes=2_000_000, backupCount=3, encoding="utf-8"
    )
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    console = logging.StreamHandler()
    console.setLevel(logging.DEBUG if verbose else logging.WARNING)
    console.setFormatter(logging.Formatter("hearth: %(levelname)s: %(message)s"))
    ours: list[logging.Handler] = [file_handler, console]
    for handler in ours:
        handler._hearth = True  # type: ignore[attr-defined]  # for erase_all_data, a 2nd call
        root.addHandler(handler)


def build(verbose: bool = False, isolate_documents: bool = False) -> Services:
    data_paths = paths_module.resolve().ensure()
    machine_policy = policy.in_force()
    settings = Settings.load(data_paths.settings_file, locks=machine_policy.locks)
    configure_logging(data_paths, verbose, bool(settings.get("privacy.debug_logging")))
    log.info("data folders: %s", data_paths.as_dict())
    log.info("settings loaded (%d locked by %s)", len(settings.locked), machine_policy.path)
    # Every load the runtime makes passes the machine policy's allow-list, whoever asks.
    # Models on servers (engine.remote) are answered through the same runtime, checked
    # against the settings and policy on servers at every request.
    from engine.remote import RemoteModels

    runtime = ModelRuntime(
        admit=models.gate(settings, data_paths),
        remote=RemoteModels(settings),
        idle_unload_after_s=lambda: 60.0 * float(settings.get("inference.unload_after_minutes")),
        # A crash of llama.cpp's fast kernels here is remembered for later starts.
        kernel_memory=data_paths.data / kernel_memory.FILE_NAME,
    )
    log.info("model runtime ready (worker starts on first load)")
    return Services(data_paths, settings, runtime, machine_policy, isolate_documents)
