"""What losing a race at the store looks like, and running the work again after one.

Two transactions inserting the same unique key (one order reported twice at once), or a
guarded write that finds the version moved, cannot both win. A write conflict MongoDB
labels transient is retried by the unit of work itself; a duplicate key is not transient
(it aborts the transaction), so the whole unit is run again here, and the second run
reads what the winner wrote."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pymongo.errors import BulkWriteError, DuplicateKeyError

from servicekit.errors import Conflict
from servicekit.unit_of_work import Tx, UnitOfWork

T = TypeVar("T")
DUPLICATE_KEY = 11000
ATTEMPTS = 10


class WriteRaced(Exception):
    """Another writer got there first; the unit of work should read again and redo."""


def is_duplicate_key(exc: Exception) -> bool:
    if isinstance(exc, DuplicateKeyError):
        return True
    if isinstance(exc, BulkWriteError):
        return any(e.get("code") == DUPLICATE_KEY for e in exc.details.get("writeErrors", []))
    return False


async def run_until_settled(uow: UnitOfWork, work: Callable[[Tx], Awaitable[T]]) -> T:
    """`uow.run(work)`, again after a lost race, with a short random pause so the racers
    do not collide in step again. A caller that keeps losing gets a 409 to retry later."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return await uow.run(work)
        except (WriteRaced, DuplicateKeyError, BulkWriteError) as exc:
            if not (isinstance(exc, WriteRaced) or is_duplicate_key(exc)):
                raise
            await asyncio.sleep(random.uniform(0, 0.01 * attempt))
    raise Conflict("too many concurrent changes to the same data; retry", code="concurrent_update")
