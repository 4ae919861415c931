"""The desktop entry point: `python -m app` (or `hearth-gui`).

Order matters for the first second: Qt and the window come first; the model loads in the
background after the window is shown; torch and chromadb are imported only when documents are
first used.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from types import TracebackType

log = logging.getLogger("hearth")
PROBE_ENV = "HEARTH_STARTUP_PROBE"  # bench/: print when the window is interactive, then quit


def main(argv: list[str] | None = None) -> int:
    from engine import network, workers

    network.install("app")
    if workers.run_if_worker(sys.argv[1:]):  # a frozen build re-runs itself as a worker
        return 0
    missing = missing_x11_libraries()
    if missing:
        print(
            "Hearth's window needs Qt's X11 libraries, and these are missing: "
            f"{', '.join(missing)}. On Debian or Ubuntu: sudo apt-get install "
            f"{' '.join(X11_PACKAGES[m] for m in missing)} (./scripts/run installs them).",
            file=sys.stderr,
        )
        return 1
    from PySide6.QtCore import QThreadPool, QTimer
    from PySide6.QtWidgets import QApplication

    from engine import paths as paths_module
    from ui.single_instance import SingleInstance

    app = QApplication(sys.argv if argv is None else argv)
    app.setApplicationName("Hearth")
    app.setDesktopFileName("hearth")
    instance = SingleInstance(paths_module.resolve().ensure().data)
    if not instance.claim():
        print(
            "Hearth is already running with this data folder; it has been brought to the front.",
            file=sys.stderr,
        )
        return 0

    from app import compose
    from ui.main_window import MainWindow

    services = compose.build(isolate_documents=True)
    # Open the chat history now, before any window exists: with encryption on, this asks the
    # keyring (which may prompt to unlock) and may convert the file once; a window that did
    # it in a page's constructor would sit frozen meanwhile.
    services.chats  # noqa: B018 - opened for its effect
    window = MainWindow(services)
    instance.activated.connect(window.bring_to_front)
    window.erased.connect(window.close)
    install_excepthook(window)
    window.show()
    QTimer.singleShot(0, window.start)
    if os.environ.get(PROBE_ENV):
        # The first event-loop turn after show(): the window paints and takes input from here.
        QTimer.singleShot(
            0, lambda: (print(f"interactive {time.time():.6f}", flush=True), window.close())
        )
    try:
        return app.exec()
    finally:
        window.shutdown()
        QThreadPool.globalInstance().waitForDone(15_000)
        services.close()
        instance.release()


# Libraries Qt's xcb platform plugin loads that a desktop may lack (the same list as
# scripts/_install.sh's qt_desktop_libs): soname -> the Debian package that has it.
X11_PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-image.so.0": "libxcb-image0",
}


def _loads(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)  # what Qt's plugin would do next; ~1 ms, no ldconfig run
    except OSError:
        return False
    return True


def missing_x11_libraries(
    environ: Mapping[str, str] | None = None,
    platform: str = sys.platform,
    loads: Callable[[str], bool] = _loads,
) -> list[str]:
    """The xcb libraries missing when the window would open on X11, else []: without them
    Qt stops with its generic "could not load the Qt platform plugin" error."""
    env = os.environ if environ is None else environ
    on_x11 = env.get("QT_QPA_PLATFORM", "xcb") == "xcb" and not env.get("WAYLAND_DISPLAY")
    if not platform.startswith("linux") or not env.get("DISPLAY") or not on_x11:
        return []
    return [soname for soname in X11_PACKAGES if not loads(soname)]


def install_excepthook(window: object) -> None:
    """A bug in a slot is logged and shown in the error banner; the window stays up and the
    chats stay saved (every message is committed when written)."""

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        log.critical("unhandled error", exc_info=(kind, exc, tb))
        show = getattr(window, "show_error", None)
        if show is not None:
            show(
                f"Something went wrong inside Hearth ({kind.__name__}: {exc}). Your chats are "
                "saved; the details are in the log file."
            )

    sys.excepthook = hook


if __name__ == "__main__":
    raise SystemExit(main())
