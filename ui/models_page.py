"""The models page: what is installed, what other apps downloaded, and the catalog with a fit
badge for this machine. Downloads show progress, speed and ETA and can be paused, resumed and
cancelled; a paused download keeps its partial file and resumes where it stopped."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from engine import models
from engine.units import size_text
from ui.adapter import StreamTask, run_call, start_task
from ui.page import Page, button
from ui.services import Services

BADGE = {
    "gpu": ("Runs on the GPU", "#1b7f3b"),
    "partial": ("Part on the GPU", "#8a6d00"),
    "cpu": ("Runs on the CPU", "#2b5797"),
    "no": ("Too big for this computer", "#a4262c"),
}


def _note(name: str) -> QLabel:
    """A selectable, wrapping line of facts about this computer, hidden until it has some."""
    label = QLabel()
    label.setWordWrap(True)
    label.setAccessibleName(name)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setVisible(False)
    return label


class ModelCard(QFrame):
    """One catalog model: facts, fit badge with its explanation, and its download controls."""

    def __init__(
        self,
        model: models.CatalogModel,
        estimate: models.FitEstimate,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.model = model
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAccessibleName(f"Catalog model {model.title}")
        title = QLabel(f"<b>{model.title}</b>")
        size = ("~" if not model.size_exact else "") + size_text(model.size_bytes)
        facts = QLabel(
            f"{model.family} · {model.parameters / 1e9:.1f} B parameters · {size} · "
            f"licence {model.license_spdx}"
        )
        facts.setWordWrap(True)
        text, colour = BADGE[estimate.verdict]
        self.badge = QLabel(
            f'<span style="color:white; background:{colour}">&nbsp;{text}&nbsp;</span>'
        )
        self.badge.setAccessibleName(f"Fit: {text}")
        self.badge.setToolTip(estimate.explanation)
        why = QLabel(estimate.explanation)
        why.setWordWrap(True)
        why.setForegroundRole(QPalette.ColorRole.PlaceholderText)  # secondary, still readable
        description = QLabel(model.description)
        description.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setAccessibleName(f"Download progress of {model.title}")
        self.progress.setVisible(False)
        self.progress_label = QLabel()
        self.download_button = QPushButton("Download")
        self.download_button.setAccessibleName(f"Download {model.title}")
        self.pause_button = QPushButton("Pause")
        self.pause_button.setAccessibleName(f"Pause download of {model.title}")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setAccessibleName(f"Cancel download of {model.title}")
        # The buttons have a line of their own, under the text: beside the title they set the
        # card's least width, which clipped it in a narrow window and scrolled it sideways.
        title.setWordWrap(True)
        head = QHBoxLayout()
        head.addWidget(title, 1)
        head.addWidget(self.badge, 0, Qt.AlignmentFlag.AlignTop)
        actions = QHBoxLayout()
        actions.addWidget(self.progress_label, 1)
        actions.addWidget(self.download_button)
        actions.addWidget(self.pause_button)
        actions.addWidget(self.cancel_button)
        self.progress_label.setWordWrap(True)
        box = QVBoxLayout(self)
        box.addLayout(head)
        box.addWidget(facts)
        box.addWidget(description)
        box.addWidget(why)
        box.addWidget(self.progress)
        box.addLayout(actions)
        self.set_state("available")

    def set_state(self, state: str, note: str = "", kept_bytes: int = 0) -> None:
        """available | paused | downloading | installed; `note` says why (a failure), and
        `kept_bytes` how much a paused download has."""
        self.state = state
        self.download_button.setVisible(state in ("available", "paused"))
        self.download_button.setText("Resume" if state == "paused" else "Download")
        self.pause_button.setVisible(state == "downloading")
        self.cancel_button.setVisible(state in ("downloading", "paused"))
        self.progress.setVisible(state in ("downloading", "paused"))
        if state == "downloading":
            return  # the progress speaks
        texts = {"installed": "" if note else "Installed.", "available": ""}
        if state == "paused":
            have = f" at {size_text(kept_bytes)} of {size_text(self.model.size_bytes)}"
            texts["paused"] = (
                f"Paused{have if kept_bytes else ''}; Resume continues where it stopped."
            )
            if kept_bytes and self.model.size_bytes:
                self.progress.setMaximum(1000)
                self.progress.setValue(min(1000, kept_bytes * 1000 // self.model.size_bytes))
        self.progress_label.setText(" ".join(t for t in (note, texts[state]) if t))

    def show_progress(self, p: models.DownloadProgress) -> None:
        self.progress.setMaximum(1000)
        self.progress.setValue(int(p.fraction * 1000))
        if p.stage == "downloading":
            eta = f" · {p.eta_s:.0f} s left" if p.eta_s is not None else ""
            self.progress_label.setText(
                f"{size_text(p.done)} of {size_text(p.total)} · {p.speed_bps / 1e6:.1f} MB/s{eta}"
            )
        else:
            self.progress_label.setText(p.stage + (f": {p.message}" if p.message else ""))


class ModelsPage(Page):
    """Lives on the GUI thread. Emits `use_model(str)` when the user picks an installed model
    for the open chat, and `models_changed()` after an install or delete."""

    use_model = Signal(str)
    models_changed = Signal()

    def __init__(
        self, services: Services, show_error: Callable[[str], None], parent: QWidget | None = None
    ) -> None:
        super().__init__(services, show_error, parent)
        self.cards: dict[str, ModelCard] = {}
        self.downloads: dict[str, StreamTask] = {}
        self._cancelled: set[str] = set()
        self._notes: dict[str, str] = {}  # model id -> how its last download ended
        self._download_next: str | None = None  # asked for before the cards were shown
        self._overview: models.Overview | None = None
        self.setAcceptDrops(True)

        self.installed = QListWidget()
        self.installed.setAccessibleName("Installed models")
        self.use_button = button(
            "Use in this chat", "Use the selected model in this chat", self._use_selected
        )
        self.delete_button = button(
            "Delete…", "Delete the selected model", lambda: self.delete_selected(confirm=True)
        )
        self.import_button = button("Import GGUF…", "Import a GGUF file", self._import_dialog)
        self.pack_button = button(
            "Import model pack…",
            "Install the models of a signed model pack folder",
            self._pack_clicked,
        )
        self.pack_task: StreamTask | None = None
        self.in_place = QCheckBox("Use imported files where they are (no copy)")
        self.found = QListWidget()
        self.found.setAccessibleName("Models found in other apps")
        self.found.setWordWrap(True)  # "Nothing found in …" and long labels were cut off
        self.use_found_button = button(
            "Use without copying", "Use the selected found model without copying", self._use_found
        )
        self.hint = QLabel("Drop .gguf files here to import them.")
        self.cards_box = QVBoxLayout()
        self.cards_box.addStretch(1)
        cards = QWidget()
        cards.setLayout(self.cards_box)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(cards)
        scroll.setAccessibleName("Model catalog")

        # Two by two: in one row the four set the pane's least width past a 900 px window.
        buttons = QGridLayout()
        for i, w in enumerate(
            (self.use_button, self.delete_button, self.import_button, self.pack_button)
        ):
            buttons.addWidget(w, i // 2, i % 2)
        left = QVBoxLayout()
        left.addWidget(QLabel("<b>Installed</b>"))
        left.addWidget(self.installed, 2)
        left.addLayout(buttons)
        left.addWidget(self.in_place)  # its own line: beside the buttons it widened the pane
        left.addWidget(self.hint)
        found_title = QLabel("<b>Found in other apps</b> (used in place, nothing copied)")
        found_title.setWordWrap(True)
        left.addWidget(found_title)
        left.addWidget(self.found, 1)
        left.addWidget(self.use_found_button)
        right = QVBoxLayout()
        catalog_title = QLabel(
            "<b>Catalog</b>: the badge says how the model would run on this computer"
        )
        catalog_title.setWordWrap(True)
        right.addWidget(catalog_title)
        # The first overview reads every model file's header and the hardware (seconds).
        self.loading = QLabel("Looking at your models, other apps' models and the catalog…")
        self.loading.setAccessibleName("Loading")
        right.addWidget(self.loading)
        # A GPU this build of llama.cpp cannot use, and the command that fixes it.
        self.gpu_advice = _note("GPU advice")
        right.addWidget(self.gpu_advice)
        # The processor as llama.cpp meets it: features, kernels, AMX, the self-test.
        self.processor = _note("Processor")
        right.addWidget(self.processor)
        right.addWidget(scroll, 1)
        layout = QHBoxLayout(self)
        layout.addLayout(left, 2)
        layout.addLayout(right, 3)

    # -- data --------------------------------------------------------------------------------

    def refresh(self) -> None:
        if self.closing:
            return
        settings, paths = self.services.settings, self.services.paths
        run_call(self, lambda: models.overview(settings, paths), self._show, self.show_error)

    def _show(self, ov: models.Overview) -> None:
        self._overview = ov
        self.loading.setVisible(False)
        self.gpu_advice.setText(ov.gpu_advice or "")
        self.gpu_advice.setVisible(ov.gpu_advice is not None)
        self.processor.setText(ov.processor or "")
        self.processor.setVisible(ov.processor is not None)
        self.installed.clear()
        for m in ov.installed:
            size = size_text(m.path.stat().st_size) if m.path.exists() else "missing"
            text = f"{m.name}  ·  {size}  ·  {m.source}"
            if m.problem:
                text += f"  ·  cannot be used: {m.problem}"
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, m.id)
            item.setToolTip(f"{m.id}\n{m.path}")  # the id commands and the API use
            self.installed.addItem(item)
        self.found.clear()
        for f in ov.found:
            app = f"{f.app} {f.label}" if f.label else f.app  # "Ollama llama3.2:3b"
            label = (
                f"{f.name or f.path.name} ({f.quantization or '?'}) · {size_text(f.size)} · {app}"
            )
            item = QListWidgetItem(label + (f" · {f.problem}" if f.problem else ""))
            item.setData(Qt.ItemDataRole.UserRole, str(f.path))
            item.setToolTip(str(f.real_path))
            self.found.addItem(item)
        if not ov.found:
            self.found.addItem(
                "Nothing found in LM Studio, GPT4All, Jan, Ollama or the Hugging Face cache."
            )
        for row in ov.catalog:
            model = row.model
            card = self.cards.get(model.id)
            if card is None:
                card = ModelCard(model, row.fit)
                card.download_button.clicked.connect(lambda _=False, i=model.id: self.download(i))
                card.pause_button.clicked.connect(lambda _=False, i=model.id: self.pause(i))
                card.cancel_button.clicked.connect(lambda _=False, i=model.id: self.cancel(i))
                self.cards[model.id] = card
                self.cards_box.insertWidget(self.cards_box.count() - 1, card)
            if model.id in self.downloads:
                continue
            state = "installed" if row.installed else "paused" if row.paused else "available"
            # What this computer will not download, the button says before it is pressed.
            card.download_button.setEnabled(row.refusal is None)
            card.download_button.setToolTip(row.refusal or "")
            note = self._notes.get(model.id) or (row.refusal if state == "available" else None)
            card.set_state(state, note or "", row.kept_bytes)
        waiting, self._download_next = self._download_next, None
        if waiting in self.cards and waiting not in self.downloads:
            self.download(waiting)

    # -- downloads ---------------------------------------------------------------------------

    def download(self, model_id: str) -> None:
        card = self.cards[model_id]
        request = models.DownloadRequest.for_model(card.model)
        config = models.DownloadConfig.from_settings(self.services.settings)
        paths = self.services.paths
        self._notes.pop(model_id, None)
        card.set_state("downloading")
        card.progress_label.setText("Connecting…")
        self.downloads[model_id] = start_task(
            self,
            lambda: models.download(request, paths, config),
            on_item=partial(self._on_download, model_id),
            on_failed=partial(self._download_failed, model_id),
            on_finished=partial(self._download_ended, model_id),
        )

    def download_when_ready(self, model_id: str) -> None:
        """Download a catalog model now, or as soon as its card is shown (first visit)."""
        if model_id in self.cards:
            self.download(model_id)
        else:
            self._download_next = model_id
            self.refresh()

    def pause(self, model_id: str) -> None:
        task = self.downloads.get(model_id)
        if task is not None:
            task.stop()  # closes the download at its next block; the partial file stays

    def cancel(self, model_id: str) -> None:
        task = self.downloads.get(model_id)
        if task is not None:
            self._cancelled.add(model_id)
            task.stop()
        else:
            self._discard(model_id)

    def _discard(self, model_id: str) -> None:
        request = models.DownloadRequest.for_model(self.cards[model_id].model)
        if models.discard_partial(request, self.services.paths):
            self._notes[model_id] = "Cancelled; the partial file was deleted."
            self.cards[model_id].set_state("available", self._notes[model_id])

    def _on_download(self, model_id: str, event: Any) -> None:
        card = self.cards[model_id]
        if isinstance(event, models.DownloadProgress):
            card.show_progress(event)
        elif isinstance(event, models.DownloadDone):
            card.progress.setValue(card.progress.maximum())
            self._notes[model_id] = f"Installed, sha256 verified against {event.verified_against}."
            card.set_state("installed", self._notes[model_id])

    def _download_failed(self, model_id: str, message: str) -> None:
        self._notes[model_id] = message  # kept on the card until the next try
        self.show_error(message)

    def _download_ended(self, model_id: str) -> None:
        self.downloads.pop(model_id, None)
        card = self.cards[model_id]
        if model_id in self._cancelled:
            self._cancelled.discard(model_id)
            self._discard(model_id)
        elif card.state == "downloading":
            # Paused, or failed: the refresh below says which, from what was kept on disk.
            card.set_state("available", self._notes.get(model_id, ""))
        if card.state == "installed":
            self.models_changed.emit()
        self.refresh()

    # -- installed models --------------------------------------------------------------------

    def selected_model(self) -> str | None:
        item = self.installed.currentItem()
        return None if item is None else str(item.data(Qt.ItemDataRole.UserRole))

    def _use_selected(self) -> None:
        model_id = self.selected_model()
        if model_id is not None:
            self.use_model.emit(model_id)

    def delete_selected(self, confirm: bool = True) -> None:
        model_id = self.selected_model()
        if model_id is None:
            return
        if (
            confirm
            and QMessageBox.question(
                self,
                "Delete model",
                f"Delete “{model_id}”? A file Hearth copied or "
                "downloaded is deleted; a file used in place is only forgotten.",
            )
            != QMessageBox.StandardButton.Yes
        ):
            return
        paths = self.services.paths
        run_call(self, lambda: models.delete(model_id, paths), self._after_change, self.show_error)

    def import_files(self, files: list[str], copy: bool | None = None) -> None:
        copy = (not self.in_place.isChecked()) if copy is None else copy
        paths = self.services.paths

        def work() -> Iterator[Any]:
            for f in files:
                yield from models.import_model(Path(f), paths, copy=copy)

        start_task(
            self,
            work,
            on_item=self._on_import,
            on_failed=self.show_error,
            on_finished=lambda: self._after_change(None),
        )

    def _on_import(self, event: models.ImportProgress | models.Imported) -> None:
        if isinstance(event, models.ImportProgress):
            self.hint.setText(f"Copying… {event.done / max(event.total, 1):.0%}")
        else:
            self.hint.setText(f"Imported as {event.model.id}.")

    def import_pack(self, folder: str) -> None:
        """Verify a signed model pack against the keys this computer trusts (models.pack_keys,
        usually machine policy), then install its models; the button cancels meanwhile."""
        paths, settings = self.services.paths, self.services.settings
        self.pack_button.setText("Cancel pack import")
        self.hint.setText("Checking the model pack…")
        self.pack_task = start_task(
            self,
            lambda: models.import_pack(Path(folder), paths, settings),
            on_item=self._on_pack,
            on_failed=self.show_error,
            on_finished=self._pack_finished,
        )

    def _pack_clicked(self) -> None:
        if self.pack_task is not None:
            self.pack_task.stop()
            self.hint.setText("Cancelling; nothing from the pack is installed.")
            return
        self.choose_pack()

    def choose_pack(self) -> None:
        """Ask for a model pack's folder, then import it."""
        folder = QFileDialog.getExistingDirectory(self, "Import a model pack", str(Path.home()))
        if folder:
            self.import_pack(folder)

    def _on_pack(self, event: models.PackProgress | models.PackImported) -> None:
        if isinstance(event, models.PackProgress):
            what = "Checking the pack" if event.stage == "checking" else "Installing"
            self.hint.setText(f"{what}… {event.done / max(event.total, 1):.0%}")
            return
        names = ", ".join(m.id for m in event.installed) or "nothing new"
        extra = (
            f"; already here: {', '.join(event.already_installed)}"
            if event.already_installed
            else ""
        )
        self.hint.setText(
            f"From the pack signed by key {models.pack_key_id(event.pack.signer)}:"
            f" installed {names}{extra}."
        )

    def _pack_finished(self) -> None:
        self.pack_task = None
        self.pack_button.setText("Import model pack…")
        self._after_change(None)

    def _after_change(self, _result: Any) -> None:
        self.models_changed.emit()
        self.refresh()

    def _import_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, "Import GGUF models", str(Path.home()), "GGUF models (*.gguf)"
        )
        if files:
            self.import_files(files)

    def _use_found(self) -> None:
        item = self.found.currentItem()
        path = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        if path:
            self.import_files([str(path)], copy=False)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(u.toLocalFile().lower().endswith(".gguf") for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        files = [
            u.toLocalFile()
            for u in event.mimeData().urls()
            if u.toLocalFile().lower().endswith(".gguf")
        ]
        if files:
            self.import_files(files)
            event.acceptProposedAction()

    def shutdown(self) -> None:
        super().shutdown()
        for task in list(self.downloads.values()):
            task.stop()
        if self.pack_task is not None:
            self.pack_task.stop()
