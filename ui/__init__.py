"""PySide6 views. `ui.adapter` is the one bridge from engine generators to Qt signals."""
