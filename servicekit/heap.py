"""The cycle collector set for a long-running server.

CPython collects its youngest generation every 700 net allocations of container objects. A
service with a few hundred requests in flight holds thousands of them at any moment, so
each pass scans live request state and promotes it; promoted state that then dies sets off
full collections over every object the process holds (about 150,000 after start-up, 100 ms
a pass). On the coupon service's sold-out claims that was about 65 us of a request's CPU.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

#: Net allocations between collections of the youngest generation: above what a few hundred
#: requests in flight hold at once, small enough to bound the garbage cycles left waiting.
YOUNG_THRESHOLD = 10_000

_running = 0


@contextmanager
def server_heap() -> Iterator[None]:
    """Around a service's life, entered before its runtime starts: what is built by then
    (modules, schemas, routes) is frozen out of every collection, and the youngest
    generation is collected less often.

    Only what nothing is using yet may be frozen: an object frozen while in use (a store
    session, a consumer's batch) is never collected once it becomes garbage, and whatever
    it holds is never let go. So the heap is collected first and frozen only by the first
    of the apps running in a process (tests run several), and unfrozen when the last stops."""
    global _running
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, oldest)
    if _running == 0:
        gc.collect()
        gc.freeze()
    _running += 1
    try:
        yield
    finally:
        _running -= 1
        if _running == 0:
            gc.unfreeze()
