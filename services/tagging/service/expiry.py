"""Expired assignments removed in batches, each exactly once across replicas."""

from __future__ import annotations

from datetime import datetime

from servicekit.clock import utcnow
from servicekit.unit_of_work import Tx, UnitOfWork
from services.tagging.domain.tags import EXPIRED, Assignment
from services.tagging.service.assignments import record_removed
from services.tagging.store.assignments import AssignmentStore

SWEEPER = "expiry-sweep"


async def sweep_expired(uow: UnitOfWork, *, limit: int) -> tuple[int, int]:
    """Remove what has expired; returns (examined, removed). Each assignment is claimed by
    a conditional delete in the transaction that emits its `TagRemoved`: a second sweeper
    on the same one deletes nothing and emits nothing."""
    now = utcnow()
    expired = await AssignmentStore(uow.db).expired(now, limit)
    removed = 0
    for assignment in expired:
        removed += await uow.run(lambda tx, a=assignment: _remove(tx, a, now))
    return len(expired), removed


async def _remove(tx: Tx, assignment: Assignment, now: datetime) -> int:
    if not await AssignmentStore(tx.db).claim_expired(assignment, now, tx.session):
        return 0
    await record_removed(tx, [assignment], reason=EXPIRED, by=SWEEPER, at=now)
    return 1
