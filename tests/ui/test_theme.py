"""Light and dark: every text colour readable on its background, and the window really drawn
in the theme chosen (Qt's colour-scheme hint alone changed nothing on a plain X11 desktop)."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QColor

from tests.ui.conftest import close
from ui.main_window import MainWindow
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
