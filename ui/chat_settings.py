"""A chat's own settings: model, system prompt, sampling and the document collections it
answers from. Values equal to what the chat would get anyway (the model's recommendation under
the user's settings) are not stored, so a later change there still reaches this chat."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QWidget,
)

from engine.chats import Chat
from engine.models import InstalledModel, Recommendation
from engine.runtime import SamplingParams
from engine.settings import Settings
from ui.wheel_safe import ComboBox, DoubleSpinBox, SpinBox


@dataclass(frozen=True)
class ChatSettingsData:
    """What the dialog shows, gathered off the GUI thread."""

    chat: Chat
    installed: list[InstalledModel]
    collections: list[str]
    sampling: SamplingParams  # what the chat's model gets before the chat's own values
    system_prompt: str
    recommendation: Recommendation


def describe_recommendation(rec: Recommendation) -> str:
    """One sentence for people: what the model's makers recommend, and where it came from."""
    if not rec.source:
        return "No recommended settings are known for this model: Hearth's own defaults apply."
    names = {
        "temperature": "temperature",
        "top_p": "top-p",
        "top_k": "top-k",
        "min_p": "min-p",
        "repeat_penalty": "repeat penalty",
    }
    parts = [f"{names[k]} {v:g}" for k, v in rec.sampling.items() if k in names]
    if rec.system_prompt:
        parts.append("its own system prompt")
    return (
        f"Recommended for this model ({rec.source}): {', '.join(parts)}. Used unless you "
        "change them here or in Settings."
    )


class ChatSettingsDialog(QDialog):
    """Modal dialog on the GUI thread; `changes()` gives the values for ChatStore.configure."""

    def __init__(
        self, data: ChatSettingsData, settings: Settings, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        chat = data.chat
        self.setWindowTitle(f"Settings for “{chat.title}”")
        self.settings = settings
        self.chat = chat
        self.defaults = data
        default_model = settings.get("model.default")
        usable = [m for m in data.installed if m.problem is None]
        default_name = next((m.name for m in usable if m.id == default_model), default_model)
        self.model = ComboBox()
        self.model.setAccessibleName("Model")
        self.model.addItem(f"Default ({default_name})", None)
        for m in usable:
            self.model.addItem(m.name, m.id)
        index = self.model.findData(chat.model)
        self.model.setCurrentIndex(max(index, 0))

        self.system = QPlainTextEdit(
            chat.system_prompt if chat.system_prompt is not None else data.system_prompt
        )
        self.system.setAccessibleName("System prompt")
        self.system.setMaximumHeight(100)

        self.temperature = DoubleSpinBox(decimals=2, minimum=0.0, maximum=5.0, singleStep=0.1)
        self.temperature.setAccessibleName("Temperature")
        self.temperature.setValue(chat.sampling.get("temperature", data.sampling.temperature))
        self.max_tokens = SpinBox(minimum=1, maximum=1_048_576, singleStep=256)
        self.max_tokens.setAccessibleName("Longest answer in tokens")
        self.max_tokens.setValue(chat.sampling.get("max_tokens", data.sampling.max_tokens))
        self.recommended = QLabel(describe_recommendation(data.recommendation))
        self.recommended.setWordWrap(True)
        self.recommended.setAccessibleName("Recommended for this model")

        self.collections = QListWidget()
        self.collections.setAccessibleName("Document collections")
        self.collections.setMaximumHeight(120)
        for name in data.collections:
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(
                Qt.CheckState.Checked if name in chat.collections else Qt.CheckState.Unchecked
            )
            self.collections.addItem(item)
        self.documents_only = QCheckBox(
            "Answer only from the documents (say so when they do not cover the question)"
        )
        self.documents_only.setChecked(chat.documents_only)

        form = QFormLayout(self)
        form.addRow("Model", self.model)
        form.addRow("System prompt", self.system)
        form.addRow("Temperature", self.temperature)
        form.addRow("Longest answer", self.max_tokens)
        form.addRow("", self.recommended)
        if data.collections:
            form.addRow("Documents", self.collections)
        else:
            form.addRow("Documents", QLabel("No collections yet: add some on the Documents page."))
        form.addRow("", self.documents_only)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def changes(self) -> dict[str, Any]:
        system = self.system.toPlainText()
        sampling = dict(self.chat.sampling)
        for key, value in (
            ("temperature", round(self.temperature.value(), 2)),
            ("max_tokens", self.max_tokens.value()),
        ):
            if value == getattr(self.defaults.sampling, key):
                sampling.pop(key, None)
            else:
                sampling[key] = value
        checked = [
            self.collections.item(i).text()
            for i in range(self.collections.count())
            if self.collections.item(i).checkState() == Qt.CheckState.Checked
        ]
        return {
            "model": self.model.currentData(),
            "system_prompt": None if system == self.defaults.system_prompt else system,
            "sampling": sampling,
            "collections": checked,
            "documents_only": self.documents_only.isChecked(),
        }
