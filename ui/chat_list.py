"""The sidebar's list of chats: the titles in a C++ string-list model, the chat ids beside them.

Measured for 1,000 chats (bench/bench_chat_search.py and a profile of the alternatives), on the
GUI thread whenever the list changes:
- a QListWidget holds an item object per row: refilling it (create, set id, set tooltip, add:
  thousands of calls into Qt) took 14-24 ms for 1,000 rows, before painting them;
- a model written in Python is one reset, but the view's layout asks `rowCount()` about twice
  per row, and each painted row asks `data()` and `flags()` for seven roles: every such call
  crosses into Python (tens of microseconds each), and a refill with its paint took ~14 ms;
- here Qt's own QStringListModel answers all of those in C++; Python keeps only the ids, and
  the view answers a tooltip request itself (one call, when the pointer rests on a row).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from PySide6.QtCore import QEvent, QModelIndex, QPersistentModelIndex, QStringListModel
from PySide6.QtGui import QHelpEvent
from PySide6.QtWidgets import QAbstractItemView, QListView, QToolTip

Index = QModelIndex | QPersistentModelIndex


class ChatListModel(QStringListModel):
    """Rows of (chat id, title), newest first. Lives on the GUI thread; emits
    modelAboutToBeReset/modelReset when `set_rows` replaces the rows."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._ids: list[int] = []
        self._titles: list[str] = []
        self._row_of: dict[int, int] = {}

    def set_rows(self, rows: Sequence[tuple[int, str]]) -> None:
        """Replace every row at once (one reset: the view drops its selection)."""
        self._ids = [chat_id for chat_id, _title in rows]
        self._titles = [title for _chat_id, title in rows]
        self._row_of = {chat_id: n for n, chat_id in enumerate(self._ids)}
        self.setStringList(self._titles)

    def titles(self) -> list[str]:
        """The titles shown, top to bottom."""
        return list(self._titles)

    def chat_id_at(self, index: Index) -> int | None:
        """The chat a row shows, or None for no row."""
        return self._ids[index.row()] if index.isValid() else None

    def index_of(self, chat_id: int | None) -> QModelIndex:
        """The row of `chat_id`, or an invalid index when it is not listed."""
        row = self._row_of.get(chat_id) if chat_id is not None else None
        return self.index(row, 0) if row is not None else QModelIndex()


class ChatListView(QListView):
    """The list of chats over a ChatListModel; lives on the GUI thread. Its rows are not
    edited in place (a chat is renamed through the store: F2, the context menu); resting the
    pointer on a row shows its whole title, which the sidebar's width may cut off."""

    def __init__(self, model: ChatListModel, parent: Any = None) -> None:
        super().__init__(parent)
        self.setModel(model)
        self.setUniformItemSizes(True)  # one line each: no row is measured
        # After a refill the view lays out every row before its first paint (~4 ms for 1,000
        # rows); in batches of 100 the first paint waits for the first batch only, and the
        # rest follow at the next turns of the event loop.
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(100)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)

    def viewportEvent(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            help_event = cast(QHelpEvent, event)
            index = self.indexAt(help_event.pos())
            if index.isValid():
                QToolTip.showText(
                    help_event.globalPos(),
                    str(index.data()),
                    self.viewport(),
                    self.visualRect(index),
                )
            else:
                QToolTip.hideText()
            return True
        return super().viewportEvent(event)
