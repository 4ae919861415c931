"""Sizes as people read them, the same in the CLI, the window and error messages."""

from __future__ import annotations


def size_text(n: float) -> str:
    """Bytes in decimal units: "812 bytes", "14 KB", "98.4 MB", "4.37 GB"."""
    if n >= 1e9:
        return f"{n / 1e9:.2f} GB"
    if n >= 1e6:
        return f"{n / 1e6:.1f} MB"
    if n >= 1e3:
        return f"{n / 1e3:.0f} KB"
    return f"{n:.0f} bytes"
