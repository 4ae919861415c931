"""Hearth's engine: models, inference, storage. Plain Python; never imports Qt, ui or app."""

__version__ = "0.1.0"
