"""A first, plain chat window: load the bundled model, ask, watch the answer stream, stop.

The full desktop UI (chats sidebar, models, documents, settings) has its own issue; this
window already follows its rules: it holds no engine state, and every engine call runs
through `StreamTask`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut, QTextCursor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPlainTextEdit,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from engine.runtime import (
    ChatMessage,
    ChatRequest,
    Done,
    LoadParams,
    ModelRuntime,
    Notice,
    SamplingParams,
    TextPiece,
)
from ui.adapter import StreamTask


class ChatWindow(QMainWindow):
    """Main window. Lives on the GUI thread; talks to the engine only through StreamTask."""

    def __init__(self, runtime: ModelRuntime, load: LoadParams, sampling: SamplingParams,
                 system_prompt: str | None) -> None:
        super().__init__()
        self.runtime = runtime
        self._load_params = load
        self.sampling = sampling
        self._system = system_prompt
        self._history: list[ChatMessage] = []
        self._answer: list[str] = []
        self.task: StreamTask | None = None

        self.setWindowTitle("Hearth")
        self.resize(820, 640)
        self.status = QLabel("Loading the model…")
        self.status.setAccessibleName("Model status")
        self.transcript = QTextBrowser()
        self.transcript.setOpenLinks(False)  # model output never opens anything by itself
        self.transcript.setAccessibleName("Conversation")
        self.composer = QPlainTextEdit()
        self.composer.setPlaceholderText("Ask anything. Enter sends, Shift+Enter adds a line.")
        self.composer.setAccessibleName("Message")
        self.composer.setFixedHeight(90)
        self.composer.installEventFilter(self)
        self.send_button = QPushButton("Send")
        self.send_button.setAccessibleName("Send message")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setAccessibleName("Stop answer")
        self.stop_button.setEnabled(False)
        self.send_button.clicked.connect(self.send)
        self.stop_button.clicked.connect(self.stop)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, activated=self.stop)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.send_button)
        layout = QVBoxLayout()
        layout.addWidget(self.status)
        layout.addWidget(self.transcript, 1)
        layout.addWidget(self.composer)
        layout.addLayout(buttons)
        central = QWidget()
        central.setLayout(layout)
        self.setCentralWidget(central)
        self._set_busy(True)
        self._run(self._load_gen, self._on_load_item)

    # -- events ------------------------------------------------------------------------

    def eventFilter(self, obj: Any, event: Any) -> bool:
        is_enter = (obj is self.composer and event.type() == event.Type.KeyPress
                    and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
                    and not event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        if is_enter:
            self.send()
            return True
        return super().eventFilter(obj, event)

    def send(self) -> None:
        text = self.composer.toPlainText().strip()
        if not text or (self.task is not None and self.task.running):
            return
        self.composer.clear()
        self._history.append(ChatMessage("user", text))
        self._append(f"\n\nYou: {text}\n\nHearth: ")
        self._answer = []
        self._set_busy(True)
        request = ChatRequest(tuple(self._history), self.sampling, self._system)
        self._run(lambda: self.runtime.stream_chat(request), self._on_chat_item,
                  on_stop=self.runtime.stop)

    def stop(self) -> None:
        if self.task is not None and self.task.running:
            self.task.stop()

    def closeEvent(self, event: Any) -> None:
        self.stop()
        super().closeEvent(event)

    # -- plumbing ----------------------------------------------------------------------

    def _run(self, factory: Any, on_item: Any, on_stop: Any = None) -> None:
        task = StreamTask(factory, on_stop=on_stop, parent=self)
        task.item.connect(on_item)
        task.failed.connect(self._on_failed)
        task.finished.connect(self._on_finished)
        self.task = task
        task.start()

    def _load_gen(self) -> Iterator[Any]:
        yield self.runtime.load(self._load_params)

    def _on_load_item(self, loaded: Any) -> None:
        self.status.setText(f"{loaded.name} · {loaded.file['quantization']} · "
                            f"{'GPU' if loaded.runtime['gpu_offload_supported'] else 'CPU'} · "
                            f"ready")

    def _on_chat_item(self, event: Any) -> None:
        if isinstance(event, TextPiece):
            self._answer.append(event.text)
            self._append(event.text)
        elif isinstance(event, Notice):
            self._append(f"\n[{event.message}]\n")
        elif isinstance(event, Done):
            s = event.stats
            self._history.append(ChatMessage("assistant", "".join(self._answer)))
            stopped = " (stopped)" if s.stop_reason == "cancelled" else ""
            loaded = self.runtime.loaded
            name = loaded.name if loaded else "model"
            self.status.setText(f"{name} · {s.tokens_per_s:.1f} tokens/s · first token "
                                f"{s.time_to_first_token_s * 1000:.0f} ms{stopped}")

    def _on_failed(self, message: str) -> None:
        if self._history and self._history[-1].role == "user":
            self._history.pop()
        self.status.setText(message)

    def _on_finished(self) -> None:
        self._set_busy(False)

    def _append(self, text: str) -> None:
        cursor = self.transcript.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(text)  # plain text: nothing in model output is interpreted
        self.transcript.setTextCursor(cursor)
        self.transcript.ensureCursorVisible()

    def _set_busy(self, busy: bool) -> None:
        self.send_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)
