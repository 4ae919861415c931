"""`python -m app` opens the desktop window."""

from app.gui import main

if __name__ == "__main__":
    raise SystemExit(main())
