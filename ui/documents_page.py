"""The documents page: collections, their folders and files, indexing progress per collection,
and every file's status with the reason when it could not be read."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.documents.events import IndexDone, IndexProgress
from ui.adapter import StreamTask, run_call, start_task
from ui.page import EMBEDDER_NAMES, Page, button
from ui.services import Services

if TYPE_CHECKING:  # numpy and the store load on first use, not at start
    from engine.documents.library import CollectionInfo
    from engine.documents.store import DocumentRow

PROBLEMS = ("failed", "skipped")


class DocumentsPage(Page):
    """Lives on the GUI thread. Emits `collections_changed()` when collections are added or
    removed, and `indexed(str)` when a collection finished indexing."""

    collections_changed = Signal()
    indexed = Signal(str)

    def __init__(
        self, services: Services, show_error: Callable[[str], None], parent: QWidget | None = None
    ) -> None:
        super().__init__(services, show_error, parent)
        self.syncs: dict[str, StreamTask] = {}
        self._select_next: str | None = None  # a collection just created
        self.progress_text: dict[str, str] = {}
        self.infos: dict[str, Any] = {}
        self.setAcceptDrops(True)

        self.collections = QListWidget()
        self.collections.setAccessibleName("Collections")
        self.collections.currentItemChanged.connect(lambda *_: self._show_selected())
        self.new_button = button("New collection…", "New collection", self._new_dialog)
        left = QVBoxLayout()
        left.addWidget(QLabel("<b>Collections</b>"))
        left.addWidget(self.collections, 1)
        left.addWidget(self.new_button)

        self.title = QLabel("Add a collection, then folders or files to it. Drop them here.")
        self.title.setWordWrap(True)
        self.sources = QListWidget()
        self.sources.setAccessibleName("Folders and files of the collection")
        self.sources.setMaximumHeight(110)
        self.add_folder_button = QPushButton("Add folder…")
        self.add_folder_button.clicked.connect(self._add_folder_dialog)
        self.add_files_button = QPushButton("Add files…")
        self.add_files_button.clicked.connect(self._add_files_dialog)
        self.remove_source_button = button(
            "Remove from collection", "Remove the selected folder or file", self._remove_source
        )
        self.sync_button = button(
            "Re-sync", "Index what changed", lambda: self.sync(self.selected())
        )
        self.stop_button = QPushButton("Stop indexing")
        self.stop_button.clicked.connect(lambda: self.stop(self.selected()))
        self.embedder_button = button(
            "Change embedder…",
            "Change the embedder of the collection",
            lambda: self._embedder_dialog(self.selected()),
        )
        self.delete_button = QPushButton("Delete collection…")
        self.delete_button.clicked.connect(lambda: self.delete(self.selected(), confirm=True))
        self.progress = QProgressBar()
        self.progress.setAccessibleName("Indexing progress")
        self.progress_label = QLabel()
        self.progress_label.setWordWrap(True)
        self.only_problems = QCheckBox("Only files with problems")
        self.only_problems.toggled.connect(lambda *_: self._show_selected())
        self.files = QTableWidget(0, 4)
        self.files.setAccessibleName("Files and their status")
        self.files.setHorizontalHeaderLabels(["File", "Status", "Passages", "Reason"])
        self.files.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.files.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.files.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.files.verticalHeader().setVisible(False)
        self.files.setWordWrap(False)

        for b in (
            self.add_folder_button,
            self.add_files_button,
            self.remove_source_button,
            self.sync_button,
            self.stop_button,
            self.embedder_button,
            self.delete_button,
        ):
            b.setAccessibleName(b.accessibleName() or b.text().rstrip("…"))
        source_buttons = QHBoxLayout()
        for b in (self.add_folder_button, self.add_files_button, self.remove_source_button):
            source_buttons.addWidget(b)
        source_buttons.addStretch(1)
        index_buttons = QHBoxLayout()
        for b in (self.sync_button, self.stop_button, self.embedder_button, self.delete_button):
            index_buttons.addWidget(b)
        index_buttons.addStretch(1)
        index_buttons.addWidget(self.only_problems)
        right = QVBoxLayout()
        right.addWidget(self.title)
        right.addWidget(self.sources)
        right.addLayout(source_buttons)
        right.addWidget(self.progress)
        right.addWidget(self.progress_label)
        right.addLayout(index_buttons)
        right.addWidget(self.files, 1)
        layout = QHBoxLayout(self)
        layout.addLayout(left, 1)
        layout.addLayout(right, 3)
        self._enable()

    # -- data --------------------------------------------------------------------------------

    def refresh(self) -> None:
        if self.closing:
            return
        run_call(
            self,
            lambda: self.services.documents.collections(),
            self._show_collections,
            self.show_error,
        )

    def _show_collections(self, infos: list[Any]) -> None:
        current = self._select_next or self.selected()
        self._select_next = None
        self.infos = {i.name: i for i in infos}
        self.collections.blockSignals(True)
        self.collections.clear()
        for info in infos:
            item = QListWidgetItem(self._label(info.name))
            item.setData(Qt.ItemDataRole.UserRole, info.name)
            self.collections.addItem(item)
            if info.name == current:
                self.collections.setCurrentItem(item)
        if self.collections.currentItem() is None and self.collections.count():
            self.collections.setCurrentRow(0)
        self.collections.blockSignals(False)
        self._show_selected()

    def _label(self, name: str) -> str:
        info = self.infos.get(name)
        counts = info.counts if info is not None else {}
        text = f"{name} · {counts.get('indexed', 0)} files"
        problems = sum(counts.get(s, 0) for s in PROBLEMS)
        if problems:
            text += f" · {problems} with problems"
        if name in self.syncs:
            text += f" · {self.progress_text.get(name, 'indexing…')}"
        return text

    def selected(self) -> str | None:
        item = self.collections.currentItem()
        return None if item is None else str(item.data(Qt.ItemDataRole.UserRole))

    def _show_selected(self) -> None:
        name = self.selected()
        self._enable()
        info = self.infos.get(name) if name else None
        self.sources.clear()
        if name is None or info is None:
            self.files.setRowCount(0)
            return
        counts = info.counts
        embedder = _embedder_name(info.embedder)
        if info.embedder_next:
            embedder += f", changing to {_embedder_name(info.embedder_next)} (Re-sync finishes it)"
        self.title.setText(
            f"<b>{name}</b> · {counts.get('indexed', 0)} files indexed, "
            f"{counts.get('chunks', 0)} passages · embedder: {embedder}"
        )
        for s in info.sources:
            self.sources.addItem(s)
        if not info.sources:
            self.title.setText(
                f"<b>{name}</b> is empty. Add a folder or files to it (the buttons below), or "
                "drop them here; Hearth reads them and answers from them with their sources."
            )
        self._show_progress(name)
        only_problems = self.only_problems.isChecked()
        if self.closing:
            return
        documents = self.services.documents
        run_call(
            self,
            lambda: documents.documents(name),
            partial(self._show_files, name, only_problems=only_problems),
            self.show_error,
        )

    def _show_files(self, name: str, rows: list[DocumentRow], *, only_problems: bool) -> None:
        if name != self.selected():
            return
        rows = [r for r in rows if r.status in PROBLEMS] if only_problems else rows
        info = self.infos.get(name)
        roots = [Path(s) for s in info.sources] if info is not None else []
        self.files.setRowCount(len(rows))
        for i, r in enumerate(rows):
            shown = _relative(Path(r.path), roots)
            for col, value in enumerate((shown, r.status, str(r.chunk_count), r.reason or "")):
                cell = QTableWidgetItem(value)
                cell.setToolTip(r.path if col == 0 else value)
                self.files.setItem(i, col, cell)
        self.files.resizeColumnToContents(0)
        self.files.resizeColumnToContents(1)
        self.files.resizeColumnToContents(2)

    def _show_progress(self, name: str | None) -> None:
        running = name in self.syncs
        self.progress.setVisible(running)
        self.progress_label.setText(self.progress_text.get(name or "", ""))

    def _enable(self) -> None:
        name = self.selected()
        has = name is not None
        running = has and name in self.syncs
        for b in (
            self.add_folder_button,
            self.add_files_button,
            self.remove_source_button,
            self.embedder_button,
            self.delete_button,
        ):
            b.setEnabled(has and not running)
        self.sync_button.setEnabled(has and not running)
        self.stop_button.setEnabled(bool(running))

    # -- collections -------------------------------------------------------------------------

    def create_collection(self, name: str, paths: list[str] | None = None) -> None:
        def done(_info: Any) -> None:
            self.collections_changed.emit()
            self._select_next = name  # selected when the refreshed list arrives
            self.refresh()
            if paths:
                self.sync(name)

        run_call(self, lambda: self.services.documents.create(name, paths), done, self.show_error)

    def add_paths(self, name: str, paths: list[str]) -> None:
        def added(_info: CollectionInfo) -> None:
            self.refresh()
            self.sync(name)

        run_call(self, lambda: self.services.documents.add(name, paths), added, self.show_error)

    def delete(self, name: str | None, confirm: bool = True) -> None:
        if name is None:
            return
        if (
            confirm
            and QMessageBox.question(
                self,
                "Delete collection",
                f"Delete the collection “{name}” and its index? Your files are not touched.",
            )
            != QMessageBox.StandardButton.Yes
        ):
            return

        def deleted(_result: None) -> None:
            self.collections_changed.emit()
            self.refresh()

        run_call(self, lambda: self.services.documents.delete(name), deleted, self.show_error)

    def change_embedder(self, name: str, model_id: str) -> None:
        """Embed the collection's passages again with `model_id`, with progress; searches use
        the old vectors until every passage has a new one."""

        def changed(_info: CollectionInfo) -> None:
            self.refresh()
            self.sync(name)

        run_call(
            self,
            lambda: self.services.documents.set_embedder(name, model_id),
            changed,
            self.show_error,
        )

    def _embedder_dialog(self, name: str | None) -> None:
        info = self.infos.get(name or "")
        if name is None or info is None:
            return
        ids = list(EMBEDDER_NAMES)
        current = info.embedder_next or info.embedder
        label, ok = QInputDialog.getItem(
            self,
            "Change embedder",
            f"Embedder for “{name}”. Its passages are embedded again, which takes about as "
            "long as indexing them did; searches keep working meanwhile.",
            [EMBEDDER_NAMES[i] for i in ids],
            ids.index(current) if current in ids else 0,
            False,
        )
        if ok:
            chosen = ids[[EMBEDDER_NAMES[i] for i in ids].index(label)]
            if chosen != current:
                self.change_embedder(name, chosen)

    def _select(self, name: str) -> None:
        for i in range(self.collections.count()):
            if self.collections.item(i).data(Qt.ItemDataRole.UserRole) == name:
                self.collections.setCurrentRow(i)

    def _new_dialog(self) -> None:
        name, ok = QInputDialog.getText(self, "New collection", "Name:")
        if ok and name.strip():
            self.create_collection(name.strip())

    def _add_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder", str(Path.home()))
        if folder and self.selected():
            self.add_paths(str(self.selected()), [folder])

    def _add_files_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add files", str(Path.home()))
        if files and self.selected():
            self.add_paths(str(self.selected()), files)

    def _remove_source(self) -> None:
        name, item = self.selected(), self.sources.currentItem()
        if name is None or item is None:
            return
        path = item.text()
        run_call(
            self,
            lambda: self.services.documents.remove_paths(name, [path]),
            lambda _info: self.sync(name),
            self.show_error,
        )

    # -- indexing ----------------------------------------------------------------------------

    def sync(self, name: str | None) -> None:
        if name is None or name in self.syncs or self.closing:
            return
        self.progress_text[name] = "Starting…"
        if name == self.selected():
            self.progress.setRange(0, 0)  # busy until the first progress says how far
        self.syncs[name] = start_task(
            self,
            lambda: self.services.documents.sync(name),
            on_item=partial(self._on_progress, name),
            on_failed=self.show_error,
            on_finished=partial(self._sync_ended, name),
        )
        self._refresh_labels()

    def stop(self, name: str | None) -> None:
        task = self.syncs.get(name or "")
        if task is not None:
            task.stop()  # closes the sync between files; what was indexed stays

    def _on_progress(self, name: str, event: IndexProgress | IndexDone) -> None:
        if isinstance(event, IndexDone):
            problems = event.failed + event.skipped
            self.progress_text[name] = (
                f"Done in {event.seconds:.1f} s: {event.indexed} indexed, {event.unchanged} "
                f"unchanged, {event.removed} removed"
                + (f", {problems} with problems (see the list)" if problems else "")
                + (
                    f"; {event.reembedded} passages embedded again with the new embedder"
                    if event.reembedded
                    else ""
                )
                + "."
            )
            self.indexed.emit(name)
        else:
            eta = f", about {event.eta_s:.0f} s left" if event.eta_s else ""
            if event.phase == "re-embedding":  # counts passages, not files
                self.progress_text[name] = (
                    f"Embedding again with the collection's new embedder: {event.files_done} "
                    f"of {event.files_total} passages ({event.chunks_per_s:.0f}/s{eta})"
                )
            else:
                self.progress_text[name] = (
                    f"{event.phase.capitalize()}: {event.files_done} of {event.files_total} "
                    f"files, {event.chunks} passages ({event.chunks_per_s:.0f}/s{eta})"
                    + (f" · {Path(event.current).name}" if event.current else "")
                    + (f" ({event.detail})" if event.detail else "")
                )
            if name == self.selected():
                self.progress.setRange(0, max(event.files_total, 1))
                self.progress.setValue(event.files_done)
        self._refresh_labels()

    def _sync_ended(self, name: str) -> None:
        self.syncs.pop(name, None)
        if not self.progress_text.get(name, "").startswith("Done"):
            self.progress_text[name] = "Stopped; Re-sync continues with what is left."
        self.refresh()

    def _refresh_labels(self) -> None:
        for i in range(self.collections.count()):
            item = self.collections.item(i)
            item.setText(self._label(str(item.data(Qt.ItemDataRole.UserRole))))
        self._show_progress(self.selected())
        self._enable()

    # -- drag and drop -----------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if not paths:
            return
        event.acceptProposedAction()
        name = self.selected()
        if name is None:
            self.create_collection("Documents", paths)
        else:
            self.add_paths(name, paths)

    def shutdown(self) -> None:
        super().shutdown()
        for task in list(self.syncs.values()):
            task.stop()


def _embedder_name(model_id: str) -> str:
    return EMBEDDER_NAMES.get(model_id, model_id).split(" (")[0]


def _relative(path: Path, roots: list[Path]) -> str:
    """A file as the user added it: relative to its folder (with the folder's name)."""
    for root in roots:
        if path != root and path.is_relative_to(root):
            return str(Path(root.name) / path.relative_to(root))
    return path.name
