"""The main window: lays out the four pages and wires them; no business logic of its own.

Errors from every page come to one place, `show_error`: a banner above the pages that the user
dismisses (never a chat message, never a modal that stops the window).
"""

from __future__ import annotations

import html
import logging
from functools import partial
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QByteArray, QEvent, QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QKeySequence, QPalette, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from engine.errors import CollectionNotFound, HearthError
from engine.models import CatalogRow
from engine.units import size_text
from ui.adapter import run_call
from ui.chat_page import ChatPage
from ui.chat_settings import ChatSettingsData, ChatSettingsDialog
from ui.documents_page import DocumentsPage
from ui.icons import icon
from ui.models_page import ModelsPage
from ui.network_activity import NetworkIndicator
from ui.page import button
from ui.services import Services
from ui.settings_page import SettingsPage
from ui.shortcuts import ShortcutsDialog
from ui.theme import Theme

if TYPE_CHECKING:  # the documents service (numpy…) loads on first use, not at start
    from engine.documents.library import CollectionInfo

log = logging.getLogger(__name__)
PAGES = ("Chat", "Models", "Documents", "Settings")
PAGE_ICONS = ("message-square", "box", "file-text", "settings")  # ui/icons
WELCOME_DELAY_MS = 3000


class MainWindow(QMainWindow):
    """Lives on the GUI thread; owns the pages, the error banner and the window state."""

    erased = Signal()  # all data deleted; the app should quit

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self._welcome_timer: QTimer | None = None
        self.theme = Theme(self)
        self.theme.apply(services.settings.get("ui.theme"))  # before anything is drawn
        self.erasing = False
        self.setWindowTitle("Hearth")
        self.setAccessibleName("Hearth")
        self.state_file = QSettings(
            str(services.paths.config / "window.ini"), QSettings.Format.IniFormat
        )

        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setAccessibleName("Error")
        self.banner.setStyleSheet("background:#fde7e9; color:#5c0b10; padding:6px;")
        self.banner_close = button("Dismiss", "Dismiss the error", self.clear_error)
        banner_row = QHBoxLayout()
        banner_row.addWidget(self.banner, 1)
        banner_row.addWidget(self.banner_close)
        self.banner_box = QWidget()
        self.banner_box.setLayout(banner_row)
        self.banner_box.setVisible(False)

        self.chat = ChatPage(services, self.show_error)
        self.models = ModelsPage(services, self.show_error)
        self.documents = DocumentsPage(services, self.show_error)
        self.settings_page = SettingsPage(services, self.show_error)
        self.stack = QStackedWidget()
        for page in (self.chat, self.models, self.documents, self.settings_page):
            self.stack.addWidget(page)
        # A navigation rail: an icon over each page's name; Ctrl+1..4 as well.
        self.nav = QListWidget()
        self.nav.setAccessibleName("Pages")
        self.nav.setViewMode(QListView.ViewMode.IconMode)
        self.nav.setMovement(QListView.Movement.Static)
        self.nav.setFlow(QListView.Flow.TopToBottom)
        self.nav.setWrapping(False)
        self.nav.setIconSize(QSize(24, 24))
        self.nav.setSpacing(2)
        self.nav.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        for i, page_name in enumerate(PAGES):
            item = QListWidgetItem(page_name)
            item.setToolTip(f"{page_name} (Ctrl+{i + 1})")
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter)
            item.setSizeHint(QSize(88, 56))
            self.nav.addItem(item)
        self.nav.setFixedWidth(96)
        self.nav.currentRowChanged.connect(self.show_page)
        for i in range(len(PAGES)):
            shortcut = QShortcut(QKeySequence(f"Ctrl+{i + 1}"), self)
            shortcut.activated.connect(partial(self.nav.setCurrentRow, i))
        self._tint_icons()
        self.shortcuts = ShortcutsDialog(self)
        help_key = QShortcut(QKeySequence(Qt.Key.Key_F1), self)
        help_key.activated.connect(self.shortcuts.show)

        body = QHBoxLayout()
        body.addWidget(self.nav)
        body.addWidget(self.stack, 1)
        outer = QVBoxLayout()
        outer.addWidget(self.banner_box)
        outer.addLayout(body, 1)
        central = QWidget()
        central.setLayout(outer)
        self.setCentralWidget(central)
        self.statusBar().setAccessibleName("Status")
        self.network = NetworkIndicator(services)
        self.statusBar().addPermanentWidget(self.network)

        self.chat.status.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.chat.open_chat_settings.connect(self.open_chat_settings)
        self.chat.first_run.closed.connect(self._close_welcome)
        self.chat.first_run.download_requested.connect(self._welcome_download)
        self.chat.first_run.pack_requested.connect(self._welcome_pack)
        self.models.use_model.connect(self.use_model)
        self.models.models_changed.connect(self.chat.refresh_models)
        self.chat.attach_requested.connect(self.attach)
        self.documents.indexed.connect(
            lambda name: self.statusBar().showMessage(
                f"“{name}” is indexed: ask about it; answers list their sources.", 8000
            )
        )
        self.settings_page.changed.connect(self._setting_changed)
        self.settings_page.servers_panel.models_changed.connect(self.chat.refresh_models)
        self.settings_page.notice.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.settings_page.erase_requested.connect(self.confirm_erase)
        self._restore_state()

    # -- pages -------------------------------------------------------------------------------

    def show_page(self, index: int) -> None:
        self.stack.setCurrentIndex(index)
        page = self.stack.widget(index)
        # Filled on every visit, off the GUI thread: files and other Hearth processes change
        # what they show.
        if page is self.models or page is self.documents:
            page.refresh()

    def start(self) -> None:
        """After show(): open the last chat and load its model in the background."""
        if self.services.chats_problem:
            self.show_error(self.services.chats_problem)
        saved = self.state_file.value("chat_id", None, type=int)
        self.chat.start(saved if isinstance(saved, int) and saved else None)
        self.settings_page.api_panel.sync()  # the API server, if the settings turn it on
        if not self.services.settings.get("ui.welcomed"):
            self.welcome()

    def welcome(self) -> None:
        """The first-run panel, with the best model for this computer worked out off the GUI
        thread (it reads the hardware and the catalog)."""
        settings, paths = self.services.settings, self.services.paths

        def suggest() -> tuple[CatalogRow | None, str | None]:
            from engine import models

            ov = models.overview(settings, paths, discover=False)
            row = models.suggest_download(ov)
            refused = [r.refusal for r in ov.catalog if r.refusal]
            everything_refused = bool(refused) and len(refused) == len(ov.catalog)
            return row, refused[0] if row is None and everything_refused else None

        self.chat.first_run.setVisible(True)

        # Worked out once the start is over: it reads the hardware through llama.cpp and the
        # catalog, seconds of work that would otherwise compete with the first answer.
        def later() -> None:
            if not self.chat.closing:
                run_call(
                    self, suggest, lambda found: self.chat.first_run.offer(*found), self.show_error
                )

        self._welcome_timer = QTimer(self, singleShot=True, interval=WELCOME_DELAY_MS)
        self._welcome_timer.timeout.connect(later)
        self._welcome_timer.start()

    def _close_welcome(self) -> None:
        self.chat.first_run.setVisible(False)
        try:
            self.services.settings.set("ui.welcomed", True)
            self.services.settings.save()
        except (HearthError, OSError) as exc:  # shown again next time; nothing else lost
            log.warning("could not remember the welcome was closed: %s", exc)

    def _welcome_download(self, model_id: str) -> None:
        self._close_welcome()
        self.nav.setCurrentRow(1)
        self.models.download_when_ready(model_id)

    def _welcome_pack(self) -> None:
        self._close_welcome()
        self.nav.setCurrentRow(1)
        self.models.choose_pack()

    def _tint_icons(self) -> None:
        """The rail in the theme's colours: icons in the text colour, and the whole item
        (icon and name) on the selection colour when chosen. Read from the rail's palette:
        the window's own was still the old theme's while it was being built (icons were
        drawn black on the dark theme)."""
        pal = self.nav.palette()
        colour = pal.color(QPalette.ColorRole.WindowText).name()
        chosen = pal.color(QPalette.ColorRole.HighlightedText).name()
        selection = pal.color(QPalette.ColorRole.Highlight).name()
        for i, name in enumerate(PAGE_ICONS):
            self.nav.item(i).setIcon(icon(name, colour, chosen))
        # Qt's own icon-mode selection covered only the name, below an unselected icon.
        self.nav.setStyleSheet(
            "QListView::item { border-radius: 6px; padding-top: 6px; }"
            f"QListView::item:selected {{ background: {selection}; color: {chosen}; }}"
        )

    def show_error(self, message: str) -> None:
        log.warning("shown to the user: %s", message)
        self.banner.setText(message)
        self.banner_box.setVisible(True)

    def clear_error(self) -> None:
        self.banner_box.setVisible(False)

    def open_chat_settings(self, chat_id: int) -> None:
        services = self.services

        def gather() -> ChatSettingsData:
            from engine import models

            chat = services.chats.chat(chat_id)
            model = chat.model or services.settings.get("model.default")
            sampling, system, rec = models.answer_defaults(model, services.settings, services.paths)
            return ChatSettingsData(
                chat,
                models.installed(services.paths),
                [c.name for c in services.documents.collections()],
                sampling,
                system,
                rec,
            )

        run_call(self, gather, self._chat_settings_dialog, self.show_error)

    def _chat_settings_dialog(self, data: ChatSettingsData) -> None:
        dialog = ChatSettingsDialog(data, self.services.settings, self)
        if dialog.exec():
            self.services.chats.configure(data.chat.id, **dialog.changes())
            self.chat.update_header()
            self.chat.preload()

    def attach(self, name: str, paths: list[str]) -> None:
        """Files attached to a chat: into the collection `name` (made if new), then indexed
        with its progress on the Documents page and the status bar."""
        documents = self.services.documents

        def add() -> CollectionInfo:
            try:
                return documents.add(name, paths)
            except CollectionNotFound:
                return documents.create(name, paths)

        def added(_info: CollectionInfo) -> None:
            self.documents.refresh()
            self.documents.sync(name)
            self.statusBar().showMessage(
                f"Reading what you attached into “{name}”; this chat answers from it.", 8000
            )

        run_call(self, add, added, self.show_error)

    def use_model(self, model_id: str) -> None:
        if self.chat.chat_id is None:
            return
        self.services.chats.configure(self.chat.chat_id, model=model_id)
        self.nav.setCurrentRow(0)
        self.chat.refresh_models()
        self.chat.preload()

    def _setting_changed(self, key: str) -> None:
        if key == "ui.theme":
            self.theme.apply(self.services.settings.get("ui.theme"))
            self._tint_icons()

    # -- delete all my data ------------------------------------------------------------------

    def confirm_erase(self) -> None:
        from engine import erase

        paths = self.services.paths
        run_call(self, lambda: erase.inventory(paths), self._ask_erase, self.show_error)

    def _ask_erase(self, areas: list[Any]) -> None:
        listed = "".join(
            f"<li>{html.escape(a.name)}: {a.files} files, {size_text(a.size)}</li>"
            for a in areas
            if a.files
        )
        text = (
            "<p>This deletes everything Hearth keeps for you, on this computer, for good:"
            f"</p><ul>{listed}</ul><p>Model files you imported in place or that other apps "
            "downloaded are not touched. Hearth closes when it is done.</p>"
        )
        if self.confirm("Delete all my data", text, "Delete everything"):
            self.erase_all_data()

    def confirm(self, title: str, text: str, action: str) -> bool:
        """A modal question with Cancel as the default (tests replace this)."""
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, parent=self)
        yes = box.addButton(action, QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(box.addButton(QMessageBox.StandardButton.Cancel))
        box.exec()
        return box.clickedButton() is yes

    def erase_all_data(self) -> None:
        """Stop the pages' work, then close the services and delete the data off the GUI
        thread; the window closes when it is done (nothing is saved again on the way out)."""
        self.erasing = True
        self.shutdown()
        run_call(
            self, self.services.erase_all_data, lambda _areas: self.erased.emit(), self.show_error
        )

    # -- state -------------------------------------------------------------------------------

    def _restore_state(self) -> None:
        geometry = self.state_file.value("geometry")
        if isinstance(geometry, QByteArray) and self.restoreGeometry(geometry):
            pass
        else:
            self.resize(1100, 720)
        splitter = self.state_file.value("chat_splitter")
        if isinstance(splitter, QByteArray):
            self.chat.splitter.restoreState(splitter)
        page = self.state_file.value("page", 0, type=int)
        self.nav.setCurrentRow(page if isinstance(page, int) else 0)

    def save_state(self) -> None:
        self.state_file.setValue("geometry", self.saveGeometry())
        self.state_file.setValue("chat_splitter", self.chat.splitter.saveState())
        self.state_file.setValue("page", self.nav.currentRow())
        if self.chat.chat_id is not None:
            self.state_file.setValue("chat_id", self.chat.chat_id)
        self.state_file.sync()

    def shutdown(self) -> None:
        """Stop what runs in the background; the caller then waits for the pool."""
        self.network.stop()
        for page in (self.chat, self.models, self.documents, self.settings_page):
            page.shutdown()
        self.statusBar().clearMessage()  # a message shown for 8 s keeps a Qt timer running
        if self._welcome_timer is not None:
            self._welcome_timer.stop()

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        # The desktop's light/dark switch (theme "system") arrives here, not as a setting.
        if event.type() == QEvent.Type.PaletteChange and hasattr(self, "nav"):
            QTimer.singleShot(0, self, self._tint_icons)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.erasing:  # the data folders are gone: write nothing back
            self.shutdown()
            super().closeEvent(event)
            return
        self.save_state()
        self.shutdown()
        super().closeEvent(event)

    def bring_to_front(self) -> None:
        """A second launch asked for this window."""
        self.setWindowState(
            (self.windowState() & ~Qt.WindowState.WindowMinimized) | Qt.WindowState.WindowActive
        )
        self.show()
        self.raise_()
        self.activateWindow()
