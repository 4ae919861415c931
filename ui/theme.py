"""Light and dark, from one set of named colours, applied as a palette on Qt's Fusion style.

Qt's own colour-scheme hint (styleHints().setColorScheme) changes nothing where the platform
theme does not follow it (a plain X11 desktop, as tried: "Dark" had no visible effect), so the
palette is ours on every platform. "System" follows the desktop's light or dark preference and
its changes while Hearth runs. Every text colour keeps a contrast of at least 4.5:1 with the
background it is drawn on (WCAG AA; tests/ui/test_theme.py checks them).
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

Role = QPalette.ColorRole

COLOURS: dict[str, dict[str, str]] = {
    "light": {
        "window": "#f4f4f5",
        "surface": "#ffffff",  # text fields, the transcript
        "alternate": "#ececee",
        "control": "#e4e4e7",
        "text": "#18181b",
        "placeholder": "#5f5f67",  # also secondary text: stats, scores, explanations
        "accent": "#2563eb",
        "on_accent": "#ffffff",
        "link": "#1d4ed8",
        "tooltip": "#18181b",
        "on_tooltip": "#fafafa",
        "disabled": "#9a9aa1",
    },
    "dark": {
        "window": "#1c1c1f",
        # Fields lighter than the window: Fusion draws their outlines darker than the window,
        # invisible on a dark one, so a field darker than the window (and a check box) hardly
        # showed.
        "surface": "#26262b",
        "alternate": "#303036",
        "control": "#36363c",
        "text": "#ececef",
        "placeholder": "#8f8f98",
        "accent": "#2563eb",
        "on_accent": "#ffffff",
        "link": "#8ab4f8",
        "tooltip": "#ececef",
        "on_tooltip": "#18181b",
        "disabled": "#6a6a72",
    },
}

# (text colour, the background it is drawn on): the pairs that must stay readable.
READABLE_PAIRS = (
    ("text", "window"),
    ("text", "surface"),
    ("text", "alternate"),
    ("text", "control"),
    ("placeholder", "surface"),
    ("placeholder", "window"),
    ("on_accent", "accent"),
    ("link", "surface"),
    ("link", "window"),
    ("on_tooltip", "tooltip"),
)


def resolve(theme: str) -> str:
    """ "light" or "dark" for a setting of system, light or dark."""
    if theme in COLOURS:
        return theme
    hints = QGuiApplication.styleHints()
    dark = hints is not None and hints.colorScheme() == Qt.ColorScheme.Dark
    return "dark" if dark else "light"


def palette(name: str) -> QPalette:
    c = {k: QColor(v) for k, v in COLOURS[name].items()}
    pal = QPalette()
    for role, key in (
        (Role.Window, "window"),
        (Role.WindowText, "text"),
        (Role.Base, "surface"),
        (Role.AlternateBase, "alternate"),
        (Role.Text, "text"),
        (Role.Button, "control"),
        (Role.ButtonText, "text"),
        (Role.BrightText, "on_accent"),
        (Role.Highlight, "accent"),
        (Role.HighlightedText, "on_accent"),
        (Role.Link, "link"),
        (Role.LinkVisited, "link"),
        (Role.ToolTipBase, "tooltip"),
        (Role.ToolTipText, "on_tooltip"),
        (Role.PlaceholderText, "placeholder"),
        (Role.Accent, "accent"),
    ):
        pal.setColor(role, c[key])
    for role in (Role.WindowText, Role.Text, Role.ButtonText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, c["disabled"])
    # Borders and bevels in Fusion come from these.
    pal.setColor(Role.Mid, c["disabled"])
    pal.setColor(Role.Dark, c["disabled"].darker(130))
    pal.setColor(Role.Light, c["surface"].lighter(110))
    return pal


class Theme(QObject):
    """The app's look; lives on the GUI thread, owned by the main window. `apply(setting)`
    sets it now; with "system" it also follows the desktop when it switches."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        app = QApplication.instance()
        assert isinstance(app, QApplication)
        self.app = app
        self.setting = "system"
        self.name = "light"
        app.setStyle("Fusion")  # draws from the palette on every platform
        hints = app.styleHints()
        if hints is not None:
            hints.colorSchemeChanged.connect(self._system_changed)

    def apply(self, setting: str) -> str:
        self.setting = setting
        self.name = resolve(setting)
        self.app.setPalette(palette(self.name))
        return self.name

    def _system_changed(self, _scheme: Qt.ColorScheme) -> None:
        if self.setting == "system":
            self.apply("system")


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two colours (1 to 21)."""

    def luminance(colour: str) -> float:
        q = QColor(colour)
        channels = []
        for v in (q.redF(), q.greenF(), q.blueF()):
            channels.append(v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4)
        r, g, bl = channels
        return 0.2126 * r + 0.7152 * g + 0.0722 * bl

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)
