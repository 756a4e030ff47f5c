"""Process-wide runtime settings of a serving gateway: the garbage collector.

Why the collector is tuned
--------------------------
CPython's cyclic collector runs a full (generation 2) collection whenever the objects promoted
out of the younger generations reach a quarter of the long-lived ones, and a full collection
walks every tracked container in the process. A serving gateway holds ~150 k of them once started
(FastAPI, pydantic, SQLAlchemy, the providers' SDK types) and each call adds its own, so at 150
calls a full collection came every ~4 s, walked 200–275 k objects and stopped the event loop —
every call's audio with it — for 80–330 ms on a busy 2-core machine (tens of ms on a quiet one):
the ≥ 60 ms playout stalls ``bench/capacity.py`` measured at 50+ calls, heard by every call at
once (issue #22 item 7; measured with ``gc.callbacks`` in the served process).

:func:`freeze_startup_objects` collects once when start-up is over and moves everything alive
then into the permanent generation (:func:`gc.freeze`), which no collection walks again: the
modules, the app, its routes and schemas live as long as the process anyway. The young
generation's threshold is raised (:data:`GC_THRESHOLDS`): the collector counts allocations net
of deallocations, and the media path's garbage (parsed JSON, events, actions) is freed by
reference counting, never cyclic, so a young collection mostly finds frames in flight and
promotes them — what made full collections due so often.

What the calls leave behind in reference cycles (a finished call's sockets among them) would
then wait for a collection that an idle server, allocating next to nothing, may not start for
a long time: with the freeze the soak (bench/soak.py) saw a file descriptor still open 15 s
after the last call. :class:`IdleCollector` runs one full collection when the server goes idle
(no request or WebSocket handler running, after some were — counting open connections instead
never saw the soak's server idle, its sampler's keep-alive connection being open): it walks
only what the calls created, and no call is there to hear the pause.

The event loop is uvicorn's choice (``loop="auto"``): uvloop's when ``uvloop`` is installed,
asyncio's otherwise; nothing here depends on which.
"""

from __future__ import annotations

import gc

__all__ = ["GC_THRESHOLDS", "IdleCollector", "freeze_startup_objects"]

#: Generation thresholds while serving: (allocations before a young collection, young
#: collections before a middle one, middle before a full one). CPython's default is
#: (700, 10, 10).
GC_THRESHOLDS = (10_000, 10, 10)


def freeze_startup_objects() -> int:
    """Collect once, freeze what is alive (start-up objects) and raise the thresholds.

    Call once, when the server is ready to accept calls. Returns how many objects were frozen.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    return gc.get_freeze_count()


class IdleCollector:
    """One full collection each time the server goes idle (see the module docstring).

    Call :meth:`tick` now and then (``switchboard serve``: once a second) with the number of
    requests and WebSocket handlers in flight.
    """

    def __init__(self) -> None:
        self._busy = False
        self.collections = 0

    def tick(self, in_flight: int) -> bool:
        """Collect if the server just went idle; returns whether it did."""
        if in_flight:
            self._busy = True
            return False
        if not self._busy:
            return False
        self._busy = False
        gc.collect()
        self.collections += 1
        return True
