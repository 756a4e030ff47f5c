"""Shared test configuration.

Async tests use anyio's pytest plugin on asyncio only: mark them ``@pytest.mark.anyio``.
``UNIT`` scales every timeout in the suite (set SWITCHBOARD_TEST_UNIT=2 on a slow machine).

Property tests (hypothesis) run the ``switchboard`` profile: no per-example deadline (the machine
is shared, timing is not what they test), no example database in CI (a fresh clone has none),
and ``SWITCHBOARD_HYPOTHESIS_EXAMPLES`` examples per test when set (100 by default).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

UNIT = float(os.environ.get("SWITCHBOARD_TEST_UNIT", "1.0"))

settings.register_profile(
    "switchboard",
    deadline=None,
    max_examples=int(os.environ.get("SWITCHBOARD_HYPOTHESIS_EXAMPLES", "100")),
    database=None if os.environ.get("CI", "").lower() == "true" else settings().database,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("switchboard")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
