"""A chat's own settings: model, system prompt, sampling and the document collections it
answers from. Values equal to the app-wide defaults are not stored, so changing a default in
Settings still reaches this chat."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QSpinBox,
    QWidget,
)

from engine.chats import Chat


class ChatSettingsDialog(QDialog):
    """Modal dialog on the GUI thread; `changes()` gives the values for ChatStore.configure."""

    def __init__(
        self,
        chat: Chat,
        settings: Any,
        models: list[Any],
        collections: list[str],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Settings for “{chat.title}”")
        self.settings = settings
        self.chat = chat
        default_model = settings.get("model.default")
        self.model = QComboBox()
        self.model.setAccessibleName("Model")
        self.model.addItem(f"Default ({default_model})", None)
        for m in models:
            if m.problem is None:
                self.model.addItem(m.id, m.id)
        index = self.model.findData(chat.model)
        self.model.setCurrentIndex(max(index, 0))

        self.system = QPlainTextEdit(
            chat.system_prompt
            if chat.system_prompt is not None
            else settings.get("chat.system_prompt")
        )
        self.system.setAccessibleName("System prompt")
        self.system.setMaximumHeight(100)

        self.temperature = QDoubleSpinBox(decimals=2, minimum=0.0, maximum=5.0, singleStep=0.1)
        self.temperature.setAccessibleName("Temperature")
        self.temperature.setValue(
            chat.sampling.get("temperature", settings.get("sampling.temperature"))
        )
        self.max_tokens = QSpinBox(minimum=1, maximum=1_048_576, singleStep=256)
        self.max_tokens.setAccessibleName("Longest answer in tokens")
        self.max_tokens.setValue(
            chat.sampling.get("max_tokens", settings.get("sampling.max_tokens"))
        )

        self.collections = QListWidget()
        self.collections.setAccessibleName("Document collections")
        self.collections.setMaximumHeight(120)
        for name in collections:
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
        if collections:
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
            if value == self.settings.get(f"sampling.{key}"):
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
            "system_prompt": None if system == self.settings.get("chat.system_prompt") else system,
            "sampling": sampling,
            "collections": checked,
            "documents_only": self.documents_only.isChecked(),
        }
