"""The chat page: with the real bundled model, stream, stop, regenerate, edit, keep chats; without
one, the sidebar search."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QEvent, Qt, QThreadPool
from PySide6.QtGui import QHelpEvent
from PySide6.QtWidgets import QAbstractItemView, QApplication, QToolTip

from app import compose
from engine.chats import Message
from tests.ui.conftest import close, ready
from ui.chat_page import ChatPage, describe_loaded, placement
from ui.chat_view import ChatView
from ui.main_window import MainWindow
from ui.open_file import open_command

GREEDY = {"temperature": 0.0, "max_tokens": 32}


def use_sampling(window: MainWindow, sampling: dict) -> None:
    window.services.chats.configure(window.chat.chat_id, sampling=sampling)


def send(qtbot, window: MainWindow, text: str, timeout: int = 60_000) -> None:
    window.chat.composer.setFocus()
    window.chat.composer.setPlainText(text)
    qtbot.keyClick(window.chat.composer, Qt.Key.Key_Return)
    assert window.chat.busy()
    qtbot.waitUntil(lambda: not window.chat.busy(), timeout=timeout)


def messages(window: MainWindow) -> list[Message]:
    return window.services.chats.messages(window.chat.chat_id)


def test_first_run_welcomes_and_is_ready_with_the_bundled_model(window: MainWindow) -> None:
    assert "Welcome to Hearth" in window.chat.view.toPlainText()
    loaded = window.services.runtime.loaded
    assert loaded is not None
    # Where it runs, as llama.cpp reported it: "CPU" on a CPU build, "GPU n/N layers" on a GPU.
    assert (
        f"SmolLM2 135M Instruct (Q4_1) · {placement(loaded)} · ready" in window.chat.header.text()
    )
    assert len(window.services.chats.chats()) == 1


def test_enter_sends_and_the_answer_streams_in_with_stats(qtbot, window: MainWindow) -> None:
    use_sampling(window, GREEDY)
    composer = window.chat.composer
    composer.setFocus()
    qtbot.keyClicks(composer, "What is the capital")
    qtbot.keyClick(composer, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    assert composer.toPlainText() == "What is the capital\n"  # Shift+Enter: a new line
    qtbot.keyClicks(composer, "of France?")
    seen: list[str] = []
    window.chat.view.textChanged.connect(lambda: seen.append(window.chat.view.toPlainText()))
    qtbot.keyClick(composer, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not window.chat.busy(), timeout=60_000)
    user, answer = messages(window)
    assert user.content == "What is the capital\nof France?"
    assert answer.status == "done" and "Paris" in answer.content
    assert "Paris" in window.chat.view.toPlainText()
    assert "What is the capital\nof France?" in window.chat.view.toPlainText()  # as typed
    assert len({s for s in seen if "Paris" not in s}) >= 2  # it appeared piece by piece
    assert "tokens/s" in window.chat.header.text()
    assert window.chat.chat_model.titles()[0] == "What is the capital of France?"


def test_a_turn_is_busy_until_its_last_events_are_shown(qtbot, window: MainWindow) -> None:
    """The generator ending on its thread is not the end of the turn: its last events and
    `finished` are still queued for this thread. A message sent in that gap was once let
    through, and the old turn's finish then marked the new one idle."""
    window.chat.preload()
    task = window.chat.task
    assert task is not None and task.wait(60)  # ended there; nothing delivered here yet
    assert window.chat.busy()
    window.chat.composer.setPlainText("sent too early")
    window.chat.send()
    assert window.chat.composer.toPlainText() == "sent too early", "kept, not sent"
    qtbot.waitUntil(lambda: not window.chat.busy(), timeout=10_000)
    assert window.chat.send_button.isEnabled()


def test_the_header_names_what_is_in_memory_whoever_loaded_it(
    qtbot, window: MainWindow, bundled_gguf: Path
) -> None:
    """The API server shares the window's runtime: when another caller unloads or loads a
    model, the header follows within a second or so, without the window asking the engine."""
    from engine.runtime import LoadParams

    runtime = window.services.runtime
    where = placement(runtime.loaded)  # type: ignore[arg-type]
    assert window.chat.header.text().startswith(f"SmolLM2 135M Instruct (Q4_1) · {where} · ready")
    runtime.unload()
    qtbot.waitUntil(lambda: window.chat.header.text().startswith("not loaded"), timeout=5_000)
    runtime.load(LoadParams(str(bundled_gguf), context_length=1024))  # as an API request would
    qtbot.waitUntil(lambda: "· ready" in window.chat.header.text(), timeout=5_000)
    assert window.chat.header.text().startswith("SmolLM2 135M Instruct (Q4_1)"), (
        "a file a chat has loaded keeps the name its chats know it by"
    )


def test_esc_stops_a_long_answer_and_keeps_it(qtbot, window: MainWindow) -> None:
    use_sampling(window, {"temperature": 0.8, "seed": 3, "max_tokens": 3000})
    window.chat.composer.setPlainText("Write a very long story about a lighthouse keeper.")
    window.chat.send()
    qtbot.waitUntil(lambda: len(window.chat.view.streaming_text) > 300, timeout=60_000)
    qtbot.waitUntil(
        lambda: window.chat.view.streaming_text[:200] in window.chat.view.toPlainText(),
        timeout=5_000,
    )  # rendered as it streams
    assert window.chat.busy()
    window.chat.composer.setPlainText("typed while it answers")
    window.chat.send()  # refused while busy, and the text is kept
    assert window.chat.composer.toPlainText() == "typed while it answers"
    qtbot.keyClick(window.chat.composer, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not window.chat.busy(), timeout=10_000)
    answer = messages(window)[-1]
    assert answer.status == "stopped" and len(answer.content) > 50
    assert answer.stats["generated_tokens"] < 3000
    assert "(stopped)" in window.chat.view.toPlainText()


def test_regenerate_replaces_and_edit_resends(qtbot, window: MainWindow) -> None:
    use_sampling(window, {"temperature": 1.0, "max_tokens": 24})
    send(qtbot, window, "Name a colour.")
    first = messages(window)
    window.chat.view.regenerate_requested.emit(first[1].id)  # the Regenerate link
    qtbot.waitUntil(lambda: not window.chat.busy(), timeout=60_000)
    second = messages(window)
    assert len(second) == 2 and second[1].id != first[1].id and second[1].status == "done"
    assert 'href="hearth:regenerate:' in window.chat.view.toHtml()

    window.chat.view.edit_requested.emit(second[0].id)  # the "Edit and resend" link
    assert window.chat.composer.toPlainText() == "Name a colour."
    assert window.chat.edit_bar.isVisible()
    window.chat.composer.setPlainText("Name a fruit.")
    window.chat.send()
    qtbot.waitUntil(lambda: not window.chat.busy(), timeout=60_000)
    third = messages(window)
    assert [m.content for m in third][:1] == ["Name a fruit."] and len(third) == 2
    assert not window.chat.edit_bar.isVisible()


def test_chats_survive_a_restart_and_the_sidebar_finds_them(qtbot, window: MainWindow) -> None:
    use_sampling(window, GREEDY)
    send(qtbot, window, "What is the capital of France?")
    window.chat.new_chat()
    use_sampling(window, GREEDY)
    send(qtbot, window, "Say hello to the lighthouse.")
    window.chat.rename_chat(window.chat.chat_id, "Lighthouse")
    window.nav.setCurrentRow(2)
    close(qtbot, window)

    services = compose.build(isolate_documents=True)
    again = MainWindow(services)
    qtbot.addWidget(again)
    try:
        again.show()
        again.start()
        qtbot.waitUntil(lambda: ready(again), timeout=60_000)
        assert again.chat.chat_model.titles() == ["Lighthouse", "What is the capital of France?"]
        assert again.nav.currentRow() == 2  # the page it was closed on
        assert "lighthouse" in again.chat.view.toPlainText().lower()
        # Message text, not only titles: the renamed chat's question is in no title now (and
        # no word of the model's answers is relied on).
        again.chat.search.setText("say hello")
        qtbot.waitUntil(lambda: again.chat.chat_model.titles() == ["Lighthouse"], timeout=5_000)
        again.chat.search.clear()
        again.chat.delete_chat(again.chat.chat_id, confirm=False)
        assert [c.title for c in services.chats.chats()] == ["What is the capital of France?"]
    finally:
        close(qtbot, again)
        services.close()


def test_markdown_renders_code_and_fetches_nothing(qtbot) -> None:
    view = ChatView()
    qtbot.addWidget(view)
    text = (
        "Here:\n\n```python\ndef f(x):\n    return x + 1\n```\n\n"
        "![tracker](https://evil.example/pixel.png) [click](https://evil.example/x) "
        '<img src="https://evil.example/raw.png">'
    )
    view.set_messages([Message(1, 1, 1, "assistant", text, "done", 0.0, "m")])
    html = view.toHtml()
    assert "def" in view.toPlainText() and "color:#008000" in html.replace(" ", "")
    assert "<img" not in html
    assert "https://evil.example/x" in view.toPlainText()  # the address is visible, as text
    assert "evil.example" not in "".join(
        a for a in html.split('href="')[1:] if a.startswith("http")
    )
    assert view.resource_requests == []


def test_an_unbacked_answer_shows_the_evidence_and_marks_its_sentences(qtbot) -> None:
    """Rendering only (the check itself runs on the real embedder in
    tests/engine/test_documents_grounding.py and end to end in tests/ui/test_pages.py)."""
    view = ChatView()
    qtbot.addWidget(view)
    text = "The code word is SWORDFISH."
    checked = {
        "summary": "0 of 1 sentences supported by the sources (1 unsupported).",
        "counts": {"supported": 0, "partial": 0, "unsupported": 1},
        "weak": True,
        "sentences": [
            {"text": text, "start": 0, "end": len(text), "verdict": "unsupported"},
        ],
        "evidence": [{"source": 1, "text": "The vault code word is PELICAN.", "similarity": 0.7}],
    }
    source = {"n": 1, "path": "/d/report.pdf", "file": "report.pdf", "page": 3, "quote": "x"}
    message = Message(1, 1, 1, "assistant", text, "done", 0.0, "m", [source], grounding=checked)
    view.set_messages([message])
    shown = view.toPlainText()
    assert "Evidence from the sources" in shown and "“The vault code word is PELICAN.”" in shown
    assert "Not in the sources: “The code word is SWORDFISH.”" in shown
    assert "0 of 1 sentences supported by the sources" in shown
    assert 'href="hearth:source:1:1"' in view.toHtml()


def test_a_source_opens_at_its_page_where_a_viewer_allows(tmp_path: Path) -> None:
    pdf = str(tmp_path / "report.pdf")
    which = {"okular": "/usr/bin/okular"}.get
    assert open_command(pdf, 3, "linux", which) == ["/usr/bin/okular", "-p", "3", pdf]
    assert open_command(pdf, 3, "win32", {"SumatraPDF": "S.exe"}.get) == [
        "S.exe",
        "-page",
        "3",
        pdf,
    ]
    assert open_command(pdf, 3, "linux", lambda _n: None) is None  # the desktop's default
    assert open_command(str(tmp_path / "notes.txt"), 3, "linux", which) is None


# -- the sidebar's search (no model needed) ----------------------------------------------------


@pytest.fixture
def page(qtbot, services) -> Iterator[ChatPage]:
    """The chat page over the app's real services, shown, with no model loaded."""
    errors: list[str] = []
    chat_page = ChatPage(services, errors.append)
    qtbot.addWidget(chat_page)
    chat_page.show()
    yield chat_page
    chat_page.shutdown()
    qtbot.waitUntil(lambda: QThreadPool.globalInstance().activeThreadCount() == 0, timeout=15_000)
    assert errors == []


def searches(
    monkeypatch: pytest.MonkeyPatch, store: Any, hold: threading.Event | None = None
) -> list[tuple[str, bool]]:
    """Record each search the real store runs, as (text, ran on the GUI thread); with `hold`,
    a search for "lig" waits for it first, as a slow disk would."""
    seen: list[tuple[str, bool]] = []
    real = store.titles

    def recorded(search: str = "") -> list:
        if search:
            seen.append((search, threading.current_thread() is threading.main_thread()))
            if hold is not None and search == "lig":
                assert hold.wait(10)
        return real(search)

    monkeypatch.setattr(store, "titles", recorded)
    return seen


def test_typing_searches_off_the_gui_thread_once_per_burst(
    qtbot, page: ChatPage, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = page.store
    keeper = store.create(title="Lighthouse keeping")
    store.create(title="Lightning facts")
    lens = store.create()
    store.add_message(lens.id, "user", "How does a Fresnel lens focus the beam?")
    page.select(keeper.id)
    assert page.chat_model.titles() == [
        "How does a Fresnel lens focus the beam?",
        "Lightning facts",
        "Lighthouse keeping",
    ]
    seen = searches(monkeypatch, store)

    qtbot.keyClicks(page.search, "FRESNEL")
    assert len(page.chat_model.titles()) == 3 and seen == []  # the keystrokes did no search
    qtbot.waitUntil(
        lambda: page.chat_model.titles() == ["How does a Fresnel lens focus the beam?"],
        timeout=5_000,
    )
    assert seen == [("FRESNEL", False)]  # seven keystrokes, one search, on a pool thread

    page.search.setText("light")
    qtbot.waitUntil(
        lambda: page.chat_model.titles() == ["Lightning facts", "Lighthouse keeping"], timeout=5_000
    )
    assert page.chat_model.chat_id_at(page.chat_list.currentIndex()) == keeper.id  # still marked
    assert page.chat_id == keeper.id

    page.search.clear()
    qtbot.waitUntil(lambda: len(page.chat_model.titles()) == 3, timeout=5_000)
    assert seen == [("FRESNEL", False), ("light", False)]  # an empty box lists, not searches


def test_a_stale_search_result_never_replaces_a_newer_one(
    qtbot, page: ChatPage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The search for "lig" is still running when the box already holds "lighthouse": its
    two chats must never be shown; the list goes straight to the one "lighthouse" finds."""
    store = page.store
    store.create(title="Lighthouse keeping")
    store.create(title="Lightning facts")
    page.refresh_list()
    hold = threading.Event()
    seen = searches(monkeypatch, store, hold)
    shown: list[list[str]] = []
    page.chat_model.modelReset.connect(lambda: shown.append(page.chat_model.titles()))

    qtbot.keyClicks(page.search, "lig")
    qtbot.waitUntil(lambda: [text for text, _gui in seen] == ["lig"], timeout=5_000)
    qtbot.keyClicks(page.search, "hthouse")
    qtbot.waitUntil(lambda: not page._search_timer.isActive(), timeout=5_000)
    hold.set()  # "lig" returns now, after the box changed
    qtbot.waitUntil(lambda: page.chat_model.titles() == ["Lighthouse keeping"], timeout=5_000)
    qtbot.wait(300)  # anything still queued would land here
    assert shown == [["Lighthouse keeping"]]
    assert seen == [("lig", False), ("lighthouse", False)]


def test_closing_the_page_while_a_search_runs_leaves_nothing_behind(
    qtbot, page: ChatPage, monkeypatch: pytest.MonkeyPatch
) -> None:
    page.store.create(title="Lighthouse keeping")
    page.refresh_list()
    hold = threading.Event()
    searches(monkeypatch, page.store, hold)
    page.search.setText("lig")
    qtbot.waitUntil(lambda: page._search_task is not None, timeout=5_000)
    page.search.setText("ligh")  # a debounce timer pending at shutdown
    page.shutdown()
    hold.set()
    qtbot.waitUntil(lambda: QThreadPool.globalInstance().activeThreadCount() == 0, timeout=5_000)
    qtbot.wait(50)
    assert not page._search_timer.isActive()
    assert page.chat_model.titles() == ["Lighthouse keeping"]  # the late result was dropped


def test_a_chat_picked_in_the_list_opens_and_stays_marked(qtbot, page: ChatPage) -> None:
    store = page.store
    older = store.create(title="Older chat with a title longer than the sidebar is wide")
    newer = store.create(title="Newer")
    page.select(newer.id)
    model = page.chat_model
    assert model.titles() == ["Newer", older.title]

    rect = page.chat_list.visualRect(model.index_of(older.id))
    qtbot.mouseClick(page.chat_list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert page.chat_id == older.id
    assert model.chat_id_at(page.chat_list.currentIndex()) == older.id  # refilled, still marked

    page.chat_list.setFocus()
    qtbot.keyClick(page.chat_list, Qt.Key.Key_Up)
    assert page.chat_id == newer.id
    qtbot.mouseDClick(page.chat_list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert page.chat_list.state() != QAbstractItemView.State.EditingState  # F2 renames instead
    assert model.titles() == ["Newer", older.title]

    tip = QHelpEvent(
        QEvent.Type.ToolTip, rect.center(), page.chat_list.viewport().mapToGlobal(rect.center())
    )
    QApplication.sendEvent(page.chat_list.viewport(), tip)
    assert QToolTip.text() == older.title  # the whole title, which the sidebar may cut off


def test_an_answer_the_store_already_holds_is_shown_once_while_it_streams(qtbot) -> None:
    """The empty answer row is stored before the window handles the question, so the list it
    reads already holds it: starting to stream into it must not add it a second time."""
    from engine.chats import ChatStore
    from ui.chat_view import ChatView

    store = ChatStore(Path(":memory:"))
    chat = store.create()
    store.add_message(chat.id, "user", "What is the capital of France?")
    row = store.add_message(chat.id, "assistant", "", status="streaming", model="TinyModel")
    view = ChatView()
    qtbot.addWidget(view)
    view.set_messages(store.messages(chat.id), busy=True)
    view.begin_answer(row)
    view.append_text("Paris is the capital.")
    view.flush()
    assert view.message_ids == [m.id for m in store.messages(chat.id)]
    assert view.toPlainText().count("TinyModel") == 1
    assert view.toPlainText().count("Paris is the capital.") == 1
    store.close()


def test_regenerate_takes_the_old_answer_off_screen_and_a_stop_keeps_its_count(
    qtbot, window: MainWindow
) -> None:
    use_sampling(window, {"temperature": 0.8, "seed": 1, "max_tokens": 16})
    send(qtbot, window, "Write a very long story about a lighthouse keeper.")
    old = messages(window)[1]
    use_sampling(window, {"temperature": 0.8, "seed": 5, "max_tokens": 3000})
    window.chat.regenerate()
    qtbot.waitUntil(lambda: len(window.chat.view.streaming_text) > 200, timeout=60_000)
    assert old.id not in window.chat.view.message_ids  # not left above the new one
    assert window.chat.view.message_ids.count(window.chat.view.message_ids[-1]) == 1
    qtbot.keyClick(window.chat.composer, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not window.chat.busy(), timeout=10_000)
    answer = messages(window)[-1]
    assert answer.status == "stopped" and answer.stats["generated_tokens"] > 20
    assert " 0 tokens" not in window.chat.view.toPlainText()


def test_a_source_nothing_can_open_says_so_instead_of_claiming_it_opened(
    qtbot, services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source opens inside Hearth at its quote; "Open in default app" beside it says when
    the desktop has nothing to open the file with, and where the file is, instead of claiming
    it opened."""
    from PySide6.QtGui import QDesktopServices

    notes = tmp_path / "notes.txt"
    notes.write_text("Tides.\n\nThe heron keeps the harbour on Sundays.\n")
    chat = services.chats.create()
    answer = services.chats.add_message(chat.id, "assistant", "The heron [1].", status="done")
    quote = "The heron keeps the harbour on Sundays."
    services.chats.update_message(
        answer.id,
        sources=[{"n": 1, "path": str(notes), "file": "notes.txt", "page": None, "quote": quote}],
    )
    chat_page = ChatPage(services, [].append)
    qtbot.addWidget(chat_page)
    viewer = chat_page.open_source(answer.id, 1)
    assert viewer is not None
    qtbot.waitUntil(lambda: viewer.loaded, timeout=30_000)
    assert viewer.selected_text() == quote  # found without a span, by its words
    assert "highlighted" in viewer.title.text()
    opened: list[bool] = []
    for desktop_opens in (False, True):
        monkeypatch.setattr(
            QDesktopServices, "openUrl", lambda url, ok=desktop_opens: opened.append(ok) or ok
        )
        viewer.open_outside()
        if not desktop_opens:
            assert "No application on this computer opens" in viewer.status.text()
    assert opened == [False, True]  # the desktop was asked both times
    assert viewer.status.text() == "Opened with the default application."
    viewer.close()
    chat_page.shutdown()


def test_the_header_shows_the_speed_of_the_chat_on_screen(qtbot, window: MainWindow) -> None:
    """The last answer's speed carried into a new, empty chat's header."""
    use_sampling(window, {"temperature": 0.2, "max_tokens": 8})
    send(qtbot, window, "Hello")
    first = window.chat.chat_id
    assert "tokens/s" in window.chat.header.text()
    window.chat.new_chat()
    assert "tokens/s" not in window.chat.header.text()
    window.chat.select(first)
    assert "tokens/s" in window.chat.header.text()  # from the stored answer's stats


def test_the_transcript_keeps_lines_readable_on_a_wide_window(qtbot) -> None:
    from ui.chat_view import READABLE_CHARACTERS, ChatView

    view = ChatView()
    qtbot.addWidget(view)
    view.show()
    widest = view.fontMetrics().averageCharWidth() * READABLE_CHARACTERS
    view.resize(2400, 600)
    qtbot.waitUntil(lambda: view.width() == 2400, timeout=2_000)
    assert view.text_width <= widest + 2  # centred, not 2,400 px long lines
    view.resize(widest // 2, 600)
    qtbot.waitUntil(lambda: view.width() == widest // 2, timeout=2_000)
    assert view.text_width >= widest // 2 - 40  # a narrow window uses all it has


def test_the_model_is_picked_at_the_top_of_the_chat(
    qtbot, window: MainWindow, bundled_gguf: Path, tmp_path: Path
) -> None:
    """The chat's model was chosen in a dialog; now in the header, by name, and it loads."""
    from engine import models
    from tests.gguf_tools import with_string_metadata

    picker = window.chat.model_picker
    qtbot.waitUntil(lambda: picker.count() >= 1, timeout=10_000)
    assert picker.currentText() == "SmolLM2 135M Instruct (Q4_1)"
    second = with_string_metadata(bundled_gguf, tmp_path / "second.gguf", "general.name", "Second")
    *_, done = models.import_model(second, window.services.paths, copy=False)
    window.chat.refresh_models()
    qtbot.waitUntil(lambda: picker.findText("Second") >= 0, timeout=10_000)
    picker.setCurrentIndex(picker.findText("Second"))
    picker.activated.emit(picker.currentIndex())
    chat = window.chat.current_chat()
    assert chat is not None and chat.model == done.model.id
    qtbot.waitUntil(lambda: ready(window), timeout=60_000)
    loaded = window.services.runtime.loaded
    assert loaded is not None and Path(loaded.params.model_path) == second.resolve()
    window.chat.new_chat()  # a new chat keeps the model the user was working with
    assert window.chat.model_picker.currentText() == "Second"


def test_the_header_says_where_the_model_runs_and_why() -> None:
    """From the worker's report of a load (tests/gpu produces real ones on a GPU build)."""
    from engine.runtime import LoadedModel, LoadParams

    def loaded(offload: dict[str, Any]) -> LoadedModel:
        return LoadedModel(LoadParams("m.gguf"), {"name": "M"}, {"offload": offload})

    fell_back = {
        "summary": "GPU 12/31 layers",
        "devices": {"CUDA0": 40.0, "CPU": 50.0},
        "note": "all layers on the GPU failed (not enough GPU memory); loaded with GPU 12/31",
    }
    text = describe_loaded(loaded(fell_back), "M")
    assert text.startswith("M · GPU 12/31 layers (CUDA0) · ready · all layers on the GPU failed")
    unused = {"summary": "CPU", "devices": {"CPU": 92.0}, "advice": "RTX 3060 is not used: …"}
    assert describe_loaded(loaded(unused), "M") == (
        "M · CPU · ready · a GPU is here that this build cannot use (see the Models page)"
    )


def test_a_source_read_by_ocr_says_so_beside_its_page(qtbot) -> None:
    view = ChatView()
    qtbot.addWidget(view)
    typed = {"n": 1, "path": "/d/a.pdf", "file": "a.pdf", "page": 2, "quote": "Typed."}
    scanned = {"n": 2, "path": "/d/b.pdf", "file": "b.pdf", "page": 1, "quote": "Scanned."}
    sources = [typed, {**scanned, "ocr": True}]
    view.set_messages([Message(1, 1, 1, "assistant", "[1] [2]", "done", 0.0, "m", sources=sources)])
    shown = view.toPlainText()
    assert "[1] a.pdf, page 2 (similarity" in shown  # a text-layer page: no mark
    assert "[2] b.pdf, page 1 · OCR (similarity" in shown


def test_an_unused_model_is_unloaded_says_so_and_the_next_message_reloads_it(qtbot, window) -> None:
    window.services.settings.set("inference.unload_after_minutes", 0.02)  # 1.2 s
    chat = window.chat
    qtbot.waitUntil(lambda: "unloaded while unused" in chat.model_state, timeout=20_000)
    assert window.services.runtime.worker_pid is None
    if chat.chat_id is None:
        chat.new_chat()
    window.services.settings.set("inference.unload_after_minutes", 30.0)
    chat.composer.setPlainText("Say hello.")
    chat.send()
    qtbot.waitUntil(lambda: ready(window) and bool(chat.last_speed), timeout=120_000)
    assert window.services.runtime.worker_pid is not None
    assert chat.model_state.endswith("ready")
