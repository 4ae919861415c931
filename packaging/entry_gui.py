"""Frozen entry point of `hearth-gui` (the window; also runs the worker processes by flag)."""

from app.gui import main

raise SystemExit(main())
