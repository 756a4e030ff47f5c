"""Call-store fixtures: every store test runs on SQLite and on PostgreSQL (see tests/backends.py).

The PostgreSQL variants are always collected; without a server they are skipped with the
reason, and under ``CI=true`` they fail instead.
"""

from __future__ import annotations

from tests.backends import store, store_target

__all__ = ["store", "store_target"]
