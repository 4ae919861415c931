"""The chat page: a sidebar of chats, a header with the model's state, the transcript and the
composer. Every engine call runs through the adapter; this page holds no engine state beyond
which chat is open.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QModelIndex, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QKeySequence, QPalette, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from engine import chat_export, models
from engine.chats import Chat, ChatNotFound
from engine.conversation import Loading, ModelReady, Saved
from engine.documents.events import Retrieved
from engine.errors import HearthError
from engine.runtime import Done, LoadedModel, Notice, TextPiece
from ui.adapter import StreamTask, run_call, start_task
from ui.chat_list import ChatListModel, ChatListView
from ui.chat_view import ChatView
from ui.first_run import FirstRunPanel
from ui.icons import icon
from ui.page import Page, button
from ui.services import Services
from ui.source_viewer import SourceViewer
from ui.wheel_safe import ComboBox

# A search waits for this pause in typing, so a burst of keystrokes makes one query.
SEARCH_DELAY_MS = 150


MODELS_DELAY_MS = 3000


def collection_name(paths: list[str]) -> str:
    """A collection's name for what was attached: the folder's or first file's name."""
    first = Path(paths[0])
    base = first.name if first.is_dir() else first.stem
    name = " ".join(base.split())[:60] or "Attached"
    return name if len(paths) == 1 else f"{name} and {len(paths) - 1} more"


def speed_text(stats: dict[str, Any]) -> str:
    """An answer's speed for the header: "31.2 tokens/s · first token 180 ms"."""
    stopped = " (stopped)" if stats.get("stop_reason") == "cancelled" else ""
    return (
        f"{stats.get('tokens_per_s', 0.0):.1f} tokens/s · first token "
        f"{stats.get('time_to_first_token_s', 0.0) * 1000:.0f} ms{stopped}"
    )


def placement(loaded: LoadedModel) -> str:
    """Where the model runs, as llama.cpp reported it: "CPU", "GPU 31/31 layers (Vulkan0)",
    and why, when a load fell back to fewer layers than it tried first."""
    if loaded.params.remote:  # not on this computer at all
        return f"on the server {loaded.file.get('server', loaded.params.server)}"
    offload = loaded.runtime.get("offload") or {}
    where = str(offload.get("summary") or "CPU")
    devices = [d for d in offload.get("devices", {}) if not d.startswith("CPU")]
    if where != "CPU" and devices:
        where += f" ({', '.join(devices)})"
    return where


def describe_loaded(loaded: LoadedModel, name: str) -> str:
    offload = loaded.runtime.get("offload") or {}
    note = f" · {offload['note']}" if offload.get("note") else ""
    if offload.get("advice"):  # the whole sentence, with its command, is on the Models page
        note += " · a GPU is here that this build cannot use (see the Models page)"
    return f"{name} · {placement(loaded)} · ready{note}"


class ChatPage(Page):
    """Lives on the GUI thread. Emits `status(str)` for the window's status bar and
    `open_chat_settings(int)` when the user asks for a chat's settings."""

    status = Signal(str)
    open_chat_settings = Signal(int)
    attach_requested = Signal(str, list)  # collection name, paths to add and index

    def __init__(
        self, services: Services, show_error: Callable[[str], None], parent: QWidget | None = None
    ) -> None:
        super().__init__(services, show_error, parent)
        self.setAcceptDrops(True)  # files or folders dropped on the chat: ask about them
        self.store = services.chats
        self.conversations = services.conversations
        self.chat_id: int | None = None
        self.task: StreamTask | None = None
        self.editing_id: int | None = None
        self.last_speed = ""
        self.model_state = "not loaded"
        self._names: dict[str, str] = {}  # model file -> the name its chats know it by
        # The runtime is shared with the API server, which may load another model (or find
        # the worker dead): the header follows what is really in memory.
        self._follow = QTimer(self)
        self._follow.setInterval(1000)
        self._follow.timeout.connect(self._follow_runtime)
        self._follow.start()

        # sidebar
        self.search = QLineEdit(placeholderText="Search chats")
        self.search.setAccessibleName("Search chats")
        self.search.setClearButtonEnabled(True)
        # Typing only restarts a timer; the search runs off the GUI thread (refresh_list).
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self.refresh_list)
        self.search.textChanged.connect(lambda _text: self._search_timer.start())
        self._search_task: StreamTask | None = None  # the search running: one at a time
        self._search_again = False  # the box changed while it ran: search when it ends
        self._filling = False  # the list is being refilled: its selection changes are ours
        self.new_button = QPushButton("New chat")
        self.new_button.setAccessibleName("New chat")
        self.new_button.setToolTip("New chat (Ctrl+N)")
        self.new_button.clicked.connect(self.new_chat)
        self.chat_model = ChatListModel(self)
        self.chat_list = ChatListView(self.chat_model)
        self.chat_list.setAccessibleName("Chats")
        self.chat_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.chat_list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.chat_list.selectionModel().currentChanged.connect(self._on_pick)
        self.chat_list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.chat_list.customContextMenuRequested.connect(self._chat_menu)
        self.chat_list.installEventFilter(self)
        side = QVBoxLayout()
        side.setContentsMargins(0, 0, 0, 0)
        side.addWidget(self.new_button)
        side.addWidget(self.search)
        side.addWidget(self.chat_list, 1)
        sidebar = QWidget()
        sidebar.setLayout(side)

        # header
        self.header = QLabel()
        self.header.setAccessibleName("Model status")
        self.header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # The state gives way to the picker on a narrow window (the picker was cut to
        # "SmolLM2 135M Instruct (C"); the whole line stays in the tooltip.
        self.header.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.settings_button = QPushButton("Chat settings…")
        self.settings_button.setAccessibleName("Chat settings")
        self.settings_button.clicked.connect(
            lambda: self.chat_id is not None and self.open_chat_settings.emit(self.chat_id)
        )
        # The chat's model, chosen here rather than in a dialog (LM Studio, Jan).
        self.model_picker = ComboBox()
        self.model_picker.setAccessibleName("Model for this chat")
        self.model_picker.setToolTip("The model that answers in this chat")
        self.model_picker.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.model_picker.activated.connect(self._model_picked)
        self._models_timer = QTimer(self, singleShot=True, interval=MODELS_DELAY_MS)
        self._models_timer.timeout.connect(self.refresh_models)
        top = QHBoxLayout()
        top.addWidget(self.model_picker)
        top.addWidget(self.header, 1)
        top.addWidget(self.settings_button)

        # transcript and composer
        self.view = ChatView()
        self.view.copy_requested.connect(self.copy_message)
        self.view.regenerate_requested.connect(lambda _id: self.regenerate())
        self.view.edit_requested.connect(self.start_edit)
        self.view.source_requested.connect(self.open_source)
        self.view.record_requested.connect(self.save_record)
        self.edit_bar = QLabel()
        self.edit_bar.setVisible(False)
        self.cancel_edit_button = QPushButton("Cancel edit")
        self.cancel_edit_button.setVisible(False)
        self.cancel_edit_button.clicked.connect(self.cancel_edit)
        self.composer = QPlainTextEdit()
        self.composer.setPlaceholderText(
            "Ask anything. Enter sends, Shift+Enter adds a line, Esc stops the answer."
        )
        self.composer.setAccessibleName("Message")
        self.composer.setTabChangesFocus(True)  # Tab moves on, as in every other field
        self.composer.setMaximumHeight(120)
        self.composer.installEventFilter(self)
        self.send_button = button("Send", "Send message", self.send)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setAccessibleName("Stop answer")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        edit_row = QHBoxLayout()
        edit_row.addWidget(self.edit_bar, 1)
        edit_row.addWidget(self.cancel_edit_button)
        # Documents for this chat, from the composer: attach files or a folder (or drop them
        # anywhere on the chat), or pick collections; the chip says what answers come from.
        self.documents_chip = QPushButton()
        self.documents_chip.setAccessibleName("Documents for this chat")
        self.documents_menu = QMenu(self)
        self.documents_menu.aboutToShow.connect(self._fill_documents_menu)
        self.documents_chip.setMenu(self.documents_menu)
        buttons = QHBoxLayout()
        buttons.addWidget(self.documents_chip)
        buttons.addStretch(1)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.send_button)
        main = QVBoxLayout()
        main.setContentsMargins(0, 0, 0, 0)
        main.addLayout(top)
        self.first_run = FirstRunPanel()  # shown by the window on a first run
        self.first_run.setVisible(False)
        main.addWidget(self.first_run)
        main.addWidget(self.view, 1)
        main.addLayout(edit_row)
        main.addWidget(self.composer)
        main.addLayout(buttons)
        content = QWidget()
        content.setLayout(main)

        self.splitter = QSplitter()
        self.splitter.addWidget(sidebar)
        self.splitter.addWidget(content)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([220, 700])
        layout = QHBoxLayout(self)
        layout.addWidget(self.splitter)

        for keys, action, context in (
            (
                QKeySequence(Qt.Key.Key_Escape),
                self.stop,
                Qt.ShortcutContext.WidgetWithChildrenShortcut,
            ),
            (
                QKeySequence(QKeySequence.StandardKey.New),
                self.new_chat,
                Qt.ShortcutContext.WindowShortcut,
            ),
            (
                QKeySequence(QKeySequence.StandardKey.Find),
                self.search.setFocus,
                Qt.ShortcutContext.WindowShortcut,
            ),
        ):
            shortcut = QShortcut(keys, self, context=context)
            shortcut.activated.connect(action)
        self.update_header()

    # -- chats -----------------------------------------------------------------------------

    def start(self, chat_id: int | None = None) -> None:
        """Open `chat_id` (or the newest chat, or a new one) and load its model. The picker
        lists the other installed models a little later: validating each file is Python work
        that would compete with the first answer for the interpreter."""
        self._models_timer.start()
        chats = self.store.chats()
        if not chats:
            chats = [self.store.create()]
        ids = {c.id for c in chats}
        self.refresh_list()
        self.select(chat_id if chat_id in ids else chats[0].id)
        self.preload()

    def refresh_list(self) -> None:
        """List the chats that match the search box. With no search text the list is read
        here (one indexed query: milliseconds for 1,000 chats), so callers see it at once. A
        search scans message text: it runs off the GUI thread, one at a time, and the list
        follows when it returns (bench/bench_chat_search.py measures both)."""
        self._search_timer.stop()
        text = self.search.text()
        if not text.strip():
            self._search_again = False  # a search still running is stale: its text is gone
            self._show_chats(text, self.store.titles())
            return
        if self._search_task is not None:
            self._search_again = True
            return
        store = self.store

        def search() -> Iterator[list[tuple[int, str]]]:
            yield store.titles(text)

        self._search_task = start_task(
            self,
            search,
            on_item=lambda rows: self._show_chats(text, rows),
            on_failed=self._on_search_failed,
            on_finished=self._on_search_done,
        )

    def _show_chats(self, text: str, rows: list[tuple[int, str]]) -> None:
        """Show `rows`, the chats found for `text`, unless the box holds other text by now:
        then they are stale, and the search for what it holds is queued or running."""
        if self.closing or text != self.search.text():
            return
        self._filling = True  # the reset and re-selection below are not the user's picks
        try:
            self.chat_model.set_rows(rows)
            current = self.chat_model.index_of(self.chat_id)
            if current.isValid():
                self.chat_list.setCurrentIndex(current)
        finally:
            self._filling = False

    def _on_search_done(self) -> None:
        self._search_task = None
        if self._search_again and not self.closing:
            self._search_again = False
            self.refresh_list()

    def _on_search_failed(self, message: str) -> None:
        if not self.closing:
            self.show_error(message)

    def select(self, chat_id: int) -> None:
        if self.busy() and chat_id != self.chat_id:
            self.status.emit("An answer is being written; stop it (Esc) to switch chats.")
            self.refresh_list()
            return
        self.chat_id = chat_id
        self.cancel_edit()
        self.refresh_list()
        shown = self.store.messages(chat_id)
        self.view.set_messages(shown)
        # The header's speed is this chat's last answer's, not the chat shown before.
        last = next((m for m in reversed(shown) if m.role == "assistant" and m.stats), None)
        self.last_speed = speed_text(last.stats) if last is not None and last.stats else ""
        self._show_chat_model()
        self._show_documents_chip()
        self.update_header()
        self.composer.setFocus()

    def new_chat(self) -> None:
        if self.busy():
            self.status.emit("An answer is being written; stop it (Esc) first.")
            return
        current = self.current_chat()
        # a new chat keeps the documents and model the user was working with
        chat = self.store.create(
            model=current.model if current else None,
            collections=current.collections if current else (),
            documents_only=current.documents_only if current else False,
        )
        self.search.clear()
        self.select(chat.id)

    def current_chat(self) -> Chat | None:
        if self.chat_id is None:
            return None
        try:
            return self.store.chat(self.chat_id)
        except ChatNotFound:
            return None

    def rename_chat(self, chat_id: int, title: str | None = None) -> None:
        if title is None:
            title, ok = QInputDialog.getText(
                self, "Rename chat", "Name:", text=self.store.chat(chat_id).title
            )
            if not ok:
                return
        try:
            self.store.rename(chat_id, title)
        except Exception as exc:
            self.show_error(getattr(exc, "user_message", str(exc)))
        self.refresh_list()

    def delete_chat(self, chat_id: int, confirm: bool = True) -> None:
        if self.busy() and chat_id == self.chat_id:
            self.status.emit("Stop the answer (Esc) before deleting this chat.")
            return
        if confirm:
            title = self.store.chat(chat_id).title
            answer = QMessageBox.question(
                self, "Delete chat", f"Delete “{title}” and all its messages?"
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
        self.store.delete(chat_id)
        if chat_id == self.chat_id:
            self.chat_id = None
            self.start()
        else:
            self.refresh_list()

    def export_chat(self, chat_id: int, path: Path | None = None) -> None:
        """Write the chat (with sources) to a file the user picks: Markdown or JSON."""
        if path is None:
            title = self.store.chat(chat_id).title
            name = "".join(c if c.isalnum() or c in " -_" else "_" for c in title).strip()
            path = self._save_path(
                "Export chat", f"{name or 'chat'}.md", "Markdown (*.md);;JSON (*.json)"
            )
            if path is None:
                return
        store = self.store
        target = path
        run_call(
            self,
            lambda: chat_export.write(store, chat_id, target),
            lambda written: self.status.emit(f"Chat exported to {written}."),
            self.show_error,
        )

    def save_record(self, message_id: int, path: Path | None = None) -> None:
        """Write one answer's record (question, answer, model and document hashes, sources,
        its audit-trail link) as JSON, or as HTML to print; `hearth record verify` checks it."""
        if path is None:
            path = self._save_path(
                "Save the answer's record",
                f"answer-{message_id}.json",
                "Record to verify later (*.json);;Page to print (*.html)",
            )
            if path is None:
                return
        from engine import answer_record

        paths, store, target = self.services.paths, self.store, path
        run_call(
            self,
            lambda: answer_record.write(paths, store, message_id, target),
            lambda _record: self.status.emit(f"Saved the answer's record to {target}."),
            self.show_error,
        )

    def _save_path(self, title: str, name: str, filters: str) -> Path | None:
        """Where the user wants a file saved (a dialog in their home folder); None: cancelled."""
        chosen, _filter = QFileDialog.getSaveFileName(self, title, str(Path.home() / name), filters)
        return Path(chosen) if chosen else None

    def _on_pick(self, current: QModelIndex, _previous: QModelIndex) -> None:
        chat_id = self.chat_model.chat_id_at(current)
        if chat_id is not None and not self._filling:
            self.select(chat_id)

    def _chat_menu(self, pos: Any) -> None:
        chat_id = self.chat_model.chat_id_at(self.chat_list.indexAt(pos))
        if chat_id is None:
            return
        menu = QMenu(self)
        menu.addAction("Rename…", lambda: self.rename_chat(chat_id))
        menu.addAction("Export…", lambda: self.export_chat(chat_id))
        menu.addAction("Delete…", lambda: self.delete_chat(chat_id))
        menu.exec(self.chat_list.viewport().mapToGlobal(pos))  # pos is in the viewport

    # -- turns -----------------------------------------------------------------------------

    def busy(self) -> bool:
        # Until _on_finished has run on this thread, not merely until the generator ended:
        # its last events and `finished` are still queued then, and a new turn started in
        # that gap would be marked idle by the old turn's _on_finished.
        return self.task is not None

    def preload(self) -> None:
        """Load the open chat's model in the background, so the first answer starts fast."""
        chat = self.current_chat()
        if chat is None or self.busy():
            return
        self._run(lambda: self.conversations.ensure_loaded(chat))

    def send(self) -> None:
        text = self.composer.toPlainText().strip()
        if not text or self.chat_id is None:
            return
        if self.busy():
            # keep what the user typed; say why it did not go
            self.status.emit(
                "Still busy with the model; your message is kept. Press Esc to stop the answer."
            )
            return
        self.composer.clear()
        chat_id, editing = self.chat_id, self.editing_id
        self.cancel_edit()
        if editing is not None:
            self._run(lambda: self.conversations.edit_and_resend(editing, text))
        else:
            self._run(lambda: self.conversations.send(chat_id, text))

    def regenerate(self) -> None:
        if self.chat_id is None or self.busy():
            return
        chat_id = self.chat_id
        self._run(lambda: self.conversations.regenerate(chat_id))

    def stop(self) -> None:
        if self.busy():
            assert self.task is not None
            self.task.stop()

    def start_edit(self, message_id: int) -> None:
        if self.busy():
            return
        msg = self.store.message(message_id)
        self.editing_id = message_id
        self.composer.setPlainText(msg.content)
        self.edit_bar.setText("Editing your message: sending replaces it and everything after it.")
        self.edit_bar.setVisible(True)
        self.cancel_edit_button.setVisible(True)
        self.composer.setFocus()

    def cancel_edit(self) -> None:
        if self.editing_id is not None:
            self.composer.clear()
        self.editing_id = None
        self.edit_bar.setVisible(False)
        self.cancel_edit_button.setVisible(False)

    def copy_message(self, message_id: int) -> None:
        QApplication.clipboard().setText(self.store.message(message_id).content)
        self.status.emit("Copied.")

    def open_source(self, message_id: int, n: int) -> SourceViewer | None:
        """Show the source inside Hearth at its quote (a PDF at its page, boxed; other files
        as text, highlighted), with "Open in default app" beside it."""
        msg = self.store.message(message_id)
        source = next((s for s in msg.sources if s.get("n") == n), None)
        if source is None:
            return None
        from engine.documents import source_view

        viewer = SourceViewer(source, source_view.show, self)
        viewer.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        viewer.show()
        self.status.emit(f"Showing {source.get('file')} at the quote.")
        return viewer

    def _run(self, factory: Callable[[], Iterator[Any]]) -> None:
        self._set_busy(True)
        self.task = start_task(
            self,
            factory,
            on_item=self._on_event,
            on_failed=self._on_failed,
            on_finished=self._on_finished,
            on_stop=self.conversations.stop,
        )

    def _on_event(self, event: Any) -> None:
        if self.closing:  # a last queued signal after shutdown: the services may be closed
            return
        if isinstance(event, Loading):
            self.model_state = f"loading {event.model}…"
            self.update_header()
        elif isinstance(event, ModelReady):
            self._names[event.loaded.params.model_path] = event.name
            self.model_state = describe_loaded(event.loaded, event.name)
            self.update_header()
        elif isinstance(event, Saved):
            msg = event.message
            if msg.chat_id != self.chat_id:
                return
            if msg.role == "user":
                self.view.set_messages(self.store.messages(msg.chat_id), busy=True)
                self.refresh_list()  # the first question names the chat
            elif msg.status == "streaming":
                # What the store holds now: a regenerated answer's old text is gone from it
                # (and the new row may already be in it, which begin_answer takes over).
                self.view.set_messages(self.store.messages(msg.chat_id), busy=True)
                self.view.begin_answer(msg)
            else:
                self.view.replace_message(msg)
        elif isinstance(event, TextPiece):
            self.view.append_text(event.text)
        elif isinstance(event, Notice):
            self.status.emit(event.message)
        elif isinstance(event, Done):
            self.last_speed = speed_text(event.stats.as_dict())
            self.update_header()
        elif isinstance(event, Retrieved):
            self.view.attach_sources([s.as_dict() for s in event.sources], list(event.notes))

    def _on_failed(self, message: str) -> None:
        if self.model_state.startswith("loading"):
            self.model_state = "not loaded"
        self.show_error(message)

    def _on_finished(self) -> None:
        self.task = None
        if self.closing:
            return
        self._set_busy(False)
        if self.chat_id is not None:
            self.view.set_messages(self.store.messages(self.chat_id))
        self._follow_runtime()
        self.update_header()

    def _follow_runtime(self) -> None:
        """Name the model in memory, whoever loaded it (a plain read: no engine call)."""
        if self.closing or self.busy():
            return  # a turn in progress reports its own loading
        loaded = self.services.runtime.loaded
        idle = self.services.runtime.idle_unloaded
        if loaded is None and idle is not None:
            name = self._names.get(idle.params.model_path) or idle.name
            state = f"{name} · unloaded while unused · loads again with your next message"
        elif loaded is None:
            state = "not loaded"
        else:
            path = loaded.params.model_path
            state = describe_loaded(loaded, self._names.get(path) or loaded.name)
        if state != self.model_state:
            self.model_state = state
            self.update_header()

    def _set_busy(self, busy: bool) -> None:
        self.stop_button.setEnabled(busy)
        self.send_button.setEnabled(not busy)
        self.view.set_busy(busy)

    # -- documents for this chat -------------------------------------------------------------

    def _show_documents_chip(self) -> None:
        chat = self.current_chat()
        names = list(chat.collections) if chat is not None else []
        self.documents_chip.setText(
            f"Documents: {', '.join(names)}" if names else "Attach documents"
        )
        colour = self.palette().color(QPalette.ColorRole.ButtonText).name()
        self.documents_chip.setIcon(icon("paperclip", colour))

    def _fill_documents_menu(self) -> None:
        """Attach, pick collections, answer only from them: listed when the menu opens."""
        menu = self.documents_menu
        menu.clear()
        chat = self.current_chat()
        if chat is None:
            return
        menu.addAction("Attach files…", self._attach_files)
        menu.addAction("Attach a folder…", self._attach_folder)
        try:
            known = [c.name for c in self.services.documents.collections()]
        except HearthError as exc:  # a quick SQLite read; a broken index says why
            self.show_error(exc.user_message)
            known = []
        if known:
            menu.addSeparator()
        for name in known:
            action = menu.addAction(name)
            action.setCheckable(True)
            action.setChecked(name in chat.collections)
            action.toggled.connect(partial(self._use_collection, name))
        if chat.collections:
            menu.addSeparator()
            only = menu.addAction("Answer only from the documents")
            only.setCheckable(True)
            only.setChecked(chat.documents_only)
            only.toggled.connect(self._documents_only)

    def _use_collection(self, name: str, on: bool) -> None:
        chat = self.current_chat()
        if chat is None:
            return
        names = [n for n in chat.collections if n != name] + ([name] if on else [])
        self.store.configure(chat.id, collections=names)
        self._show_documents_chip()
        self.update_header()

    def _documents_only(self, on: bool) -> None:
        if self.chat_id is not None:
            self.store.configure(self.chat_id, documents_only=on)
            self.update_header()

    def _attach_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Attach files", str(Path.home()))
        if files:
            self.attach(files)

    def _attach_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Attach a folder", str(Path.home()))
        if folder:
            self.attach([folder])

    def attach(self, paths: list[str]) -> None:
        """Ask about these files now: they become (or join) a collection this chat answers
        from; the window indexes it (attach_requested) and says when it is ready."""
        chat = self.current_chat()
        if chat is None or not paths:
            return
        name = chat.collections[0] if chat.collections else collection_name(paths)
        if name not in chat.collections:
            self.store.configure(chat.id, collections=[*chat.collections, name])
        self._show_documents_chip()
        self.update_header()
        self.attach_requested.emit(name, paths)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.attach(paths)

    # -- the model picker ------------------------------------------------------------------

    def refresh_models(self) -> None:
        """Fill the picker with the installed, usable models (read off the GUI thread)."""
        if self.closing:
            return
        paths, settings = self.services.paths, self.services.settings

        def gather() -> list[tuple[str, str]]:
            from engine import remote

            found = [(m.name, m.id) for m in models.installed(paths) if m.problem is None]
            # as last asked: no request here
            return found + [(r.name, r.id) for r, _ in remote.usable(settings, paths)]

        run_call(self, gather, self._show_models, self.show_error)

    def _show_models(self, choices: list[tuple[str, str]]) -> None:
        """`choices`: (name, model id), local models first, then those on servers."""
        self.model_picker.blockSignals(True)
        self.model_picker.clear()
        for name, model_id in choices:
            self.model_picker.addItem(name, model_id)
            self.model_picker.setItemData(
                self.model_picker.count() - 1, model_id, Qt.ItemDataRole.ToolTipRole
            )
        self.model_picker.blockSignals(False)
        self._show_chat_model()

    def _show_chat_model(self) -> None:
        chat = self.current_chat()
        wanted = (chat.model if chat is not None else None) or self.services.settings.get(
            "model.default"
        )
        index = self.model_picker.findData(wanted)
        if index < 0 and wanted:  # not listed (yet, or a path the chat names)
            spec = models.bundled_model(wanted)
            self.model_picker.addItem(spec.name if spec else Path(wanted).name, wanted)
            index = self.model_picker.count() - 1
        self.model_picker.setCurrentIndex(index)

    def _model_picked(self, index: int) -> None:
        model_id = self.model_picker.itemData(index)
        if self.chat_id is None or model_id is None:
            return
        if self.busy():
            self.status.emit("An answer is being written; stop it (Esc) to change the model.")
            self._show_chat_model()
            return
        default = self.services.settings.get("model.default")
        self.store.configure(self.chat_id, model=None if model_id == default else model_id)
        self.preload()

    def update_header(self) -> None:
        parts = [self.model_state] + ([self.last_speed] if self.last_speed else [])
        chat = self.current_chat()
        if chat is not None and chat.collections:
            only = " only" if chat.documents_only else ""
            parts.append(f"answers from{only}: {', '.join(chat.collections)}")
        self.header.setText(" · ".join(parts))
        self.header.setToolTip(self.header.text())

    # -- keys ------------------------------------------------------------------------------

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.KeyPress:
            key = event.key()  # type: ignore[attr-defined]
            mods = event.modifiers()  # type: ignore[attr-defined]
            if (
                obj is self.composer
                and key in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
                and not mods & Qt.KeyboardModifier.ShiftModifier
            ):
                self.send()
                return True
            chat_id = (
                self.chat_model.chat_id_at(self.chat_list.currentIndex())
                if obj is self.chat_list
                else None
            )
            if chat_id is not None:
                if key == Qt.Key.Key_F2:
                    self.rename_chat(chat_id)
                    return True
                if key == Qt.Key.Key_Delete:
                    self.delete_chat(chat_id)
                    return True
        return super().eventFilter(obj, event)

    def shutdown(self) -> None:
        super().shutdown()
        self._models_timer.stop()
        self._follow.stop()
        self._search_timer.stop()
        self.stop()
        self.view.stop_rendering()
