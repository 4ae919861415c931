"""App-wide settings, generated from the engine's schema. A setting fixed by machine policy is
shown disabled, with a lock and the policy's reason; the engine refuses changes to it anyway.
Each change is validated by the engine and saved at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine import models, vault
from engine import settings as settings_module
from engine.errors import HearthError
from ui.adapter import run_call
from ui.api_panel import ApiPanel
from ui.page import EMBEDDER_NAMES, Page, button
from ui.servers_panel import ServersPanel
from ui.services import Services
from ui.wheel_safe import ComboBox, DoubleSpinBox, SpinBox

SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Answers",
        (
            "sampling.temperature",
            "sampling.top_p",
            "sampling.top_k",
            "sampling.min_p",
            "sampling.repeat_penalty",
            "sampling.max_tokens",
            "sampling.seed",
            "chat.system_prompt",
        ),
    ),
    (
        "Model",
        (
            "inference.context_length",
            "inference.threads",
            "inference.gpu_layers",
            "inference.batch_size",
            "inference.kv_cache_type",
            "inference.flash_attention",
            "inference.lookup_decoding",
            "inference.unload_after_minutes",
        ),
    ),
    ("Appearance", ("ui.theme",)),
    (
        "Privacy and downloads",
        (
            "privacy.offline_mode",
            "privacy.encrypt_chats",
            "privacy.debug_logging",
            "downloads.allowed",
            "downloads.endpoint",
        ),
    ),
    (
        "Documents",
        (
            "documents.top_k",
            "documents.min_score",
            "documents.strict",
            "documents.ocr",
            "documents.embedder",
        ),
    ),
    ("Model servers", ("remote.allowed", "remote.timeout_s", "remote.ca_bundle")),
    ("API server", ("api.enabled", "api.port")),
)
LABELS = {
    "sampling.temperature": "Temperature",
    "sampling.top_p": "Top P",
    "sampling.top_k": "Top K",
    "sampling.min_p": "Min P",
    "sampling.repeat_penalty": "Repeat penalty",
    "sampling.max_tokens": "Longest answer (tokens)",
    "sampling.seed": "Seed",
    "chat.system_prompt": "System prompt",
    "inference.context_length": "Context (tokens)",
    "inference.threads": "CPU threads",
    "inference.gpu_layers": "GPU layers",
    "inference.batch_size": "Batch size",
    "inference.unload_after_minutes": "Unload when unused (min)",
    "inference.kv_cache_type": "Context memory (KV cache)",
    "inference.flash_attention": "Flash attention",
    "inference.lookup_decoding": "Guess tokens from the prompt",
    "ui.theme": "Theme",
    "privacy.offline_mode": "Offline mode",
    "privacy.encrypt_chats": "Encrypt chat history",
    "privacy.debug_logging": "Log content (debugging)",
    "downloads.allowed": "Allow model downloads",
    "downloads.endpoint": "Download from",
    "documents.top_k": "Passages per question",
    "documents.min_score": "Least similarity",
    "documents.ocr": "Read scanned PDFs (OCR)",
    "documents.strict": "Strict answers (checked before shown)",
    "documents.embedder": "Embedder for new collections",
    "remote.allowed": "Allow model servers",
    "remote.timeout_s": "Wait for a server (s)",
    "remote.ca_bundle": "Certificate authorities file",
    "api.enabled": "Run the API server",
    "api.port": "Port",
}
# Choices shown by name rather than by id.
CHOICE_NAMES = {
    **EMBEDDER_NAMES,
    "f16": "f16 (full)",
    "q8_0": "q8_0 (about half the memory)",
    "q4_0": "q4_0 (about a quarter)",
    "auto": "Automatic",
}


class SettingsPage(Page):
    """Lives on the GUI thread. Emits `changed(str)` with the key after a saved change, and
    `erase_requested()` when the user asks to delete all data (the window confirms), and
    `notice(str)` with a message for the status bar."""

    changed = Signal(str)
    erase_requested = Signal()
    notice = Signal(str)

    def __init__(
        self, services: Services, show_error: Callable[[str], None], parent: QWidget | None = None
    ) -> None:
        super().__init__(services, show_error, parent)
        self.settings = services.settings
        self.editors: dict[str, QWidget] = {}
        self.lock_labels: dict[str, QLabel] = {}
        specs = {d["key"]: d for d in settings_module.describe()}
        self.api_panel = ApiPanel(services, show_error)
        self.changed.connect(self.api_panel.setting_changed)
        self.servers_panel = ServersPanel(services, show_error)
        self.changed.connect(self.servers_panel.setting_changed)

        self.recommended_note = QLabel(
            "A model that comes with recommended settings (from the catalog or its own file) "
            "uses them for every value here you have not changed: the bundled SmolLM2 answers "
            "at temperature 0.2 with its own system prompt. A value you change here applies "
            "to every model; Chat settings shows what a chat's model is run with."
        )
        self.recommended_note.setWordWrap(True)
        self.recommended_note.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        reasons = list(dict.fromkeys(self.settings.locked.values()))
        self.policy_note = QLabel(
            "Some settings here are set by your organisation and cannot be changed: "
            + "; ".join(reasons)
        )
        self.policy_note.setWordWrap(True)
        self.policy_note.setAccessibleName("Settings set by your organisation")
        self.policy_note.setVisible(bool(reasons))
        body = QVBoxLayout()
        body.addWidget(self.policy_note)
        for title, keys in SECTIONS:
            body.addWidget(QLabel(f"<h3>{title}</h3>"))
            if title == "Answers":
                body.addWidget(self.recommended_note)
            form = QFormLayout()
            for key in keys:
                form.addRow(LABELS[key], self._row(key, specs[key]))
            body.addLayout(form)
            if title == "API server":
                body.addWidget(self.api_panel)
            if title == "Model servers":
                body.addWidget(self.servers_panel)
        body.addWidget(QLabel("<h3>Data</h3>"))
        data = QHBoxLayout()
        folder = QLineEdit(str(services.paths.data))
        folder.setReadOnly(True)
        folder.setAccessibleName("Data folder")
        open_button = QPushButton("Open")
        open_button.setAccessibleName("Open the data folder")
        open_button.clicked.connect(
            lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(services.paths.data)))
        )
        data.addWidget(folder, 1)
        data.addWidget(open_button)
        body.addLayout(data)
        elsewhere = QLabel(
            "To keep Hearth's data elsewhere (another disk, a USB stick), start "
            "it with the HEARTH_HOME environment variable set to that folder."
        )
        elsewhere.setWordWrap(True)  # unwrapped, it widened the page past a 900 px window
        body.addWidget(elsewhere)
        erase = button("Delete all my data…", "Delete all my data", self.erase_requested.emit)
        erase.setToolTip("Chats, document indexes, downloaded models, caches, logs and settings")
        erase_row = QHBoxLayout()
        erase_row.addWidget(erase)
        erase_row.addStretch(1)
        body.addLayout(erase_row)
        body.addStretch(1)
        inner = QWidget()
        inner.setLayout(body)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        layout = QVBoxLayout(self)
        layout.addWidget(scroll)

    # -- rows --------------------------------------------------------------------------------

    def _row(self, key: str, spec: dict[str, Any]) -> QWidget:
        value = self.settings.get(key)
        editor: QWidget
        if key == "inference.gpu_layers":
            editor = self._gpu_layers_row(value)
        elif spec["choices"]:
            combo = ComboBox()
            for choice in spec["choices"]:
                combo.addItem(CHOICE_NAMES.get(choice, str(choice).capitalize()), choice)
            combo.setCurrentIndex(max(combo.findData(value), 0))
            combo.currentIndexChanged.connect(
                lambda _i, k=key, c=combo: self.apply(k, c.currentData())
            )
            editor = combo
        elif spec["type"] == "bool":
            box = QCheckBox()
            box.setChecked(bool(value))
            box.toggled.connect(lambda checked, k=key: self.apply(k, checked))
            editor = box
        elif spec["type"] == "int":
            spin = SpinBox()
            spin.setRange(
                int(spec["minimum"] if spec["minimum"] is not None else -(2**31)),
                int(min(spec["maximum"] if spec["maximum"] is not None else 2**31 - 1, 2**31 - 1)),
            )
            spin.setValue(int(value))
            spin.editingFinished.connect(lambda k=key, s=spin: self.apply(k, s.value()))
            editor = spin
        elif spec["type"] == "float":
            dspin = DoubleSpinBox(decimals=2, singleStep=0.05)
            dspin.setRange(float(spec["minimum"] or 0.0), float(spec["maximum"] or 1e9))
            dspin.setValue(float(value))
            dspin.editingFinished.connect(lambda k=key, s=dspin: self.apply(k, round(s.value(), 4)))
            editor = dspin
        elif key == "chat.system_prompt":
            text = QPlainTextEdit(str(value))
            text.setMaximumHeight(80)
            # saved when typing pauses, not on every key (each save writes and syncs a file)
            self._prompt_timer = QTimer(self, singleShot=True, interval=700)
            self._prompt_timer.timeout.connect(lambda k=key, t=text: self.apply(k, t.toPlainText()))
            text.textChanged.connect(self._prompt_timer.start)
            editor = text
        else:
            line = QLineEdit(str(value))
            line.editingFinished.connect(lambda k=key, e=line: self.apply(k, e.text().strip()))
            editor = line
        editor.setAccessibleName(LABELS[key])
        editor.setToolTip(spec["description"])
        self.editors[key] = editor
        row = QWidget()
        box_layout = QHBoxLayout(row)
        box_layout.setContentsMargins(0, 0, 0, 0)
        box_layout.addWidget(editor, 1)
        if key in self.settings.locked:
            reason = self.settings.locked[key]
            editor.setEnabled(False)
            # The reason is said once, at the top of the page; the row says "Locked" (no
            # emoji: without an emoji font it was an empty box) and the reason on hover.
            lock = QLabel("Locked by your organisation")
            lock.setToolTip(reason)
            lock.setForegroundRole(QPalette.ColorRole.PlaceholderText)
            lock.setAccessibleName(f"{LABELS[key]} is locked")
            editor.setToolTip(f"Locked: {reason}")
            editor.setAccessibleDescription(f"Locked by machine policy: {reason}")
            self.lock_labels[key] = lock
            box_layout.addWidget(lock)
        return row

    def _gpu_layers_row(self, value: int) -> QWidget:
        """Auto (-1: all that fit, as the fit estimate says) or a manual layer count."""
        self.gpu_auto = QCheckBox("Automatic")
        self.gpu_auto.setAccessibleName("GPU layers automatic")
        self.gpu_spin = SpinBox()
        self.gpu_spin.setRange(0, 100_000)
        self.gpu_spin.setAccessibleName("GPU layers manual")
        self.gpu_auto.setChecked(value == -1)
        self.gpu_spin.setValue(max(value, 0))
        self.gpu_spin.setEnabled(value != -1)
        self.gpu_fit = QLabel("Working out what fits…")
        self.gpu_fit.setWordWrap(True)

        def changed() -> None:
            self.gpu_spin.setEnabled(not self.gpu_auto.isChecked())
            self.apply(
                "inference.gpu_layers", -1 if self.gpu_auto.isChecked() else self.gpu_spin.value()
            )

        self.gpu_auto.toggled.connect(lambda _c: changed())
        self.gpu_spin.editingFinished.connect(changed)
        row = QWidget()
        box = QVBoxLayout(row)
        box.setContentsMargins(0, 0, 0, 0)
        line = QHBoxLayout()
        line.addWidget(self.gpu_auto)
        line.addWidget(self.gpu_spin, 1)
        box.addLayout(line)
        box.addWidget(self.gpu_fit)
        self.refresh_fit()
        return row

    def refresh_fit(self) -> None:
        services = self.services

        def estimate() -> str:
            fit = models.fit_for(
                services.settings.get("model.default"),
                services.paths,
                services.settings.get("inference.context_length"),
                kv_type=services.settings.get("inference.kv_cache_type"),
            )
            est = fit.estimate
            name = fit.path.name if fit.path is not None else fit.shape.name
            return f"For {name}: {est.explanation} Automatic offloads " + (
                "all layers." if est.gpu_layers == -1 else f"{est.gpu_layers} layers."
            )

        run_call(
            self,
            estimate,
            self.gpu_fit.setText,
            lambda message: self.gpu_fit.setText(f"No estimate: {message}"),
        )

    # -- saving ------------------------------------------------------------------------------

    def apply(self, key: str, value: Any) -> bool:
        """Validate, set and save one value; on refusal show why and restore the editor."""
        if value == self.settings.get(key):
            return True
        try:
            self.settings.set(key, value)
            self.settings.save()
        except HearthError as exc:
            self.show_error(exc.user_message)
            self._restore(key)
            return False
        except OSError as exc:
            self.show_error(f"The settings could not be saved: {exc}")
            return False
        self.changed.emit(key)
        if key == "privacy.encrypt_chats" and value:
            # Checked now, not at the next start: turning it on must not fail silently later.
            run_call(
                self,
                vault.check_available,
                lambda _ok: self.notice.emit(
                    "The chat history will be encrypted when Hearth next starts."
                ),
                lambda message: self._refuse(key, message),
            )
        if key in ("inference.context_length", "model.default", "inference.kv_cache_type"):
            self.refresh_fit()
        return True

    def _refuse(self, key: str, message: str) -> None:
        self.settings.reset(key)
        self.settings.save()
        self._restore(key)
        self.show_error(message)

    def _restore(self, key: str) -> None:
        editor, value = self.editors.get(key), self.settings.get(key)
        editor_any: Any = editor
        editor_any.blockSignals(True)
        if isinstance(editor, QCheckBox):
            editor.setChecked(bool(value))
        elif isinstance(editor, (QSpinBox, QDoubleSpinBox)):
            editor.setValue(value)
        elif isinstance(editor, QComboBox):
            editor.setCurrentIndex(max(editor.findData(value), 0))
        elif isinstance(editor, QLineEdit):
            editor.setText(str(value))
        editor_any.blockSignals(False)

    def shutdown(self) -> None:
        super().shutdown()
        self.flush()

    def flush(self) -> None:
        """Save a system prompt still waiting for a pause in typing (the window is closing)."""
        timer = getattr(self, "_prompt_timer", None)
        if timer is not None and timer.isActive():
            timer.stop()
            timer.timeout.emit()
