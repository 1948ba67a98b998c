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


@contextmanager
def server_heap() -> Iterator[None]:
    """While a service runs: what start-up built (modules, schemas, routes, clients) is
    frozen out of every collection, and the youngest generation is collected less often.
    Unfrozen at stop, so an app stopped in a process that goes on (tests) can be collected."""
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, oldest)
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
