"""The operator console: static files (plain ES modules, no build step) the app serves at
``/console`` (``app/console_routes.py``); docs/console.md says why this stack."""

from pathlib import Path

__all__ = ["STATIC_DIR"]

#: The console's files, packaged with switchboard (pyproject's package-data).
STATIC_DIR = Path(__file__).parent / "static"
