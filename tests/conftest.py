"""Shared test configuration.

Async tests use anyio's pytest plugin on asyncio only: mark them ``@pytest.mark.anyio``.
``UNIT`` scales every timeout in the suite (set SWITCHBOARD_TEST_UNIT=2 on a slow machine).

``make test`` runs the suite in two parts (Makefile ``suite``): everything not marked ``serial``
spread over pytest-xdist workers, then the ``serial`` tests alone (they measure time, latency or
load, which other tests running beside them would distort). Among the parallel ones, each
multi-process tier stays on one worker at a time (:func:`pytest_collection_modifyitems`):
a cluster rig starts five processes, a browser test a Chromium.

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


#: Markers whose tests run one at a time even in a parallel run (one xdist group each).
ONE_AT_A_TIME = ("cluster", "browser")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``--dist loadgroup``), keep each heavy tier on one worker."""
    for item in items:
        for marker in ONE_AT_A_TIME:
            if item.get_closest_marker(marker) is not None:
                item.add_marker(pytest.mark.xdist_group(marker))
                break
