"""Frozen entry point of `hearth` (the CLI; also runs the worker processes by flag)."""

from app.cli import main

raise SystemExit(main())
