"""The desktop entry point: `python -m app` (or `hearth-gui`)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from app.cli import WORKER_FLAG

    if sys.argv[1:2] == [WORKER_FLAG]:  # a frozen build re-runs itself as the model worker
        from engine.runtime import worker

        worker.main()
        return 0
    from PySide6.QtWidgets import QApplication

    from app import compose
    from engine import models
    from engine.runtime.params import from_settings
    from ui.chat_window import ChatWindow

    app = QApplication(sys.argv if argv is None else argv)
    app.setApplicationName("Hearth")
    services = compose.build()
    try:
        model_path = models.resolve(services.settings.get("model.default"), services.paths)
        load, sampling, system = from_settings(services.settings, str(model_path))
        window = ChatWindow(services.runtime, load, sampling, system)
        window.show()
        return app.exec()
    finally:
        services.close()


if __name__ == "__main__":
    raise SystemExit(main())
