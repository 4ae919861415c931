"""The keyboard shortcuts, listed in one place (F1)."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

SHORTCUTS = (
    ("Ctrl+1 … Ctrl+4", "Chat, Models, Documents, Settings"),
    ("Ctrl+N", "New chat"),
    ("Ctrl+F", "Search chats"),
    ("Enter", "Send the message"),
    ("Shift+Enter", "A new line in the message"),
    ("Esc", "Stop the answer"),
    ("Tab / Shift+Tab", "Move to the next or previous control"),
    ("F2", "Rename the chat selected in the list"),
    ("Delete", "Delete the chat selected in the list (asks first)"),
    ("F1", "This list"),
)


class ShortcutsDialog(QDialog):
    """Lives on the GUI thread; not modal, so it can stay open beside the window."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.setAccessibleName("Keyboard shortcuts")
        rows = "".join(
            f"<tr><td style='padding-right:16px'><b>{keys}</b></td><td>{what}</td></tr>"
            for keys, what in SHORTCUTS
        )
        table = QLabel(f"<table>{rows}</table>")
        table.setAccessibleName("Shortcuts")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        box = QVBoxLayout(self)
        box.addWidget(table)
        box.addWidget(buttons)
