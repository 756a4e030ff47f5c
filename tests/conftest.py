"""Shared test configuration.

Async tests use anyio's pytest plugin on asyncio only: mark them ``@pytest.mark.anyio``.
``UNIT`` scales every timeout in the suite (set SWITCHBOARD_TEST_UNIT=2 on a slow machine).
"""

from __future__ import annotations

import os

import pytest

UNIT = float(os.environ.get("SWITCHBOARD_TEST_UNIT", "1.0"))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
