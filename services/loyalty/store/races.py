"""Losing a race at the store, and running the work again after one.

A guarded save that finds the version moved raises `WriteRaced`, labelled transient, so the
unit of work's transaction runs again as a whole (PyMongo's `with_transaction` retries on
that label) and reads what the winner wrote: the same path in HTTP use cases and in event
handlers. A duplicate key (the same request or source posted twice at once) aborts the
transaction; `settle` runs the work again so the second run answers as a repeat."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pymongo.errors import DuplicateKeyError, PyMongoError

from servicekit.errors import Conflict
from servicekit.unit_of_work import Tx, UnitOfWork

T = TypeVar("T")
ATTEMPTS = 10


class WriteRaced(PyMongoError):
    """Another writer saved the document first; the whole transaction runs again."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self._add_error_label("TransientTransactionError")


async def settle(uow: UnitOfWork, work: Callable[[Tx], Awaitable[T]]) -> T:
    """`uow.run(work)`, again after a duplicate key, with a short random pause. A caller
    that keeps losing gets a 409 to retry later."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return await uow.run(work)
        except DuplicateKeyError:
            await asyncio.sleep(random.uniform(0, 0.01 * attempt))
    raise Conflict("too many concurrent changes to the same data; retry", code="concurrent_update")
