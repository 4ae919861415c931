"""Hearth's composition root and entry points (CLI and GUI)."""
