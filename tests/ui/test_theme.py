"""Light and dark: every text colour readable on its background, and the window really drawn
in the theme chosen (Qt's colour-scheme hint alone changed nothing on a plain X11 desktop)."""

from __future__ import annotations

import re

import pytest
from PySide6.QtGui import QColor

from tests.ui.conftest import close
from ui.main_window import MainWindow
from ui.markdown_render import render
from ui.theme import COLOURS, READABLE_PAIRS, contrast


@pytest.mark.parametrize("name", sorted(COLOURS))
def test_every_text_colour_is_readable_on_its_background(name: str) -> None:
    colours = COLOURS[name]
    low = {
        f"{fg} on {bg}": round(contrast(colours[fg], colours[bg]), 2)
        for fg, bg in READABLE_PAIRS
        if contrast(colours[fg], colours[bg]) < 4.5
    }
    assert low == {}
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)  # the formula's own check


CODE = """```python
# Example usage:
import os
class Greeter(Base):
    def greet(self, name: str = "you") -> str:
        \"\"\"Say hello.\"\"\"
        return f"Hello {name}" if name is not None else 'x' * 3 + str(1.5)
```"""


@pytest.mark.parametrize("dark", [False, True])
def test_code_in_answers_is_readable_in_both_themes(dark: bool) -> None:
    """Code in a dark window was light grey on a light block: tokens the style leaves
    uncoloured took the theme's text colour. Every colour in a block must read on it."""
    block = render(CODE, dark)
    background = re.search(r"<pre style=\"background:(#[0-9a-fA-F]{6})", block)
    assert background is not None
    colours = set(re.findall(r"color:\s*(#[0-9a-fA-F]{6})", block))
    assert len(colours) >= 5  # really highlighted
    low = {c: round(contrast(c, background[1]), 2) for c in colours}
    assert {c: r for c, r in low.items() if r < 4.5} == {}
    assert (QColor(background[1]).lightnessF() < 0.5) == dark


def lightness(window: MainWindow) -> float:
    """Mean lightness (0-1) of the window as drawn."""
    image = window.grab().toImage()
    step = 16
    samples = [
        QColor(image.pixel(x, y)).lightnessF()
        for x in range(0, image.width(), step)
        for y in range(0, image.height(), step)
    ]
    return sum(samples) / len(samples)


def test_dark_and_light_change_what_is_drawn_and_survive_a_restart(qtbot, services) -> None:
    window = MainWindow(services)
    qtbot.addWidget(window)
    window.show()
    window.nav.setCurrentRow(3)
    page = window.settings_page
    assert page.apply("ui.theme", "dark")
    qtbot.wait(50)
    dark = lightness(window)
    assert page.apply("ui.theme", "light")
    qtbot.wait(50)
    light = lightness(window)
    assert dark < 0.3 < 0.7 < light
    assert page.apply("ui.theme", "dark")
    close(qtbot, window)

    again = MainWindow(services)  # the saved choice, at the next start
    qtbot.addWidget(again)
    again.show()
    qtbot.wait(50)
    assert again.theme.name == "dark" and lightness(again) < 0.3
    close(qtbot, again)


def test_icons_are_drawn_in_the_theme_colour_on_a_clear_background(qtbot) -> None:
    """Buttons once showed noise around an icon (an unfilled pixmap)."""
    from PySide6.QtGui import QIcon

    from ui.icons import icon

    image = icon("paperclip", "#ff0000").pixmap(48, 48, QIcon.Mode.Normal).toImage()
    corner = image.pixelColor(0, 0)
    assert corner.alpha() == 0
    drawn = [
        image.pixelColor(x, y)
        for x in range(image.width())
        for y in range(image.height())
        if image.pixelColor(x, y).alpha() > 200
    ]
    assert drawn and all(c.red() > 200 and c.green() < 60 and c.blue() < 60 for c in drawn)


def ink(image) -> float:  # type: ignore[no-untyped-def]
    """Mean lightness of an icon's drawn (opaque) pixels."""
    drawn = [
        image.pixelColor(x, y).lightnessF()
        for x in range(image.width())
        for y in range(image.height())
        if image.pixelColor(x, y).alpha() > 200
    ]
    assert drawn
    return sum(drawn) / len(drawn)


def test_the_rail_icons_follow_the_theme_from_the_first_frame(qtbot, services) -> None:
    """Built with the dark theme saved, the rail's icons were drawn black on black: the
    window's palette was still the light one while it was being built."""
    from PySide6.QtGui import QIcon

    services.settings.set("ui.theme", "dark")
    window = MainWindow(services)
    qtbot.addWidget(window)
    window.show()
    models = window.nav.item(1).icon()
    assert ink(models.pixmap(24, 24, QIcon.Mode.Normal).toImage()) > 0.7
    window.settings_page.apply("ui.theme", "light")
    qtbot.waitUntil(
        lambda: ink(window.nav.item(1).icon().pixmap(24, 24, QIcon.Mode.Normal).toImage()) < 0.3,
        timeout=2_000,
    )
    close(qtbot, window)
