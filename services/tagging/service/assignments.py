"""Putting tags on customers and taking them off, inside the caller's transaction.

Each change writes the assignment, a history entry and a tag sync queue entry, and emits its
event, all in the one transaction: no change without its event, no event without its change.
Tag rules (the other writer of assignments) call `assign_tag` / `remove_tag` directly. A tag
change re-evaluates the customers' segment memberships in the same transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from bson import ObjectId

from contracts.tagging import TagAssigned, TagRemoved
from servicekit.clock import utcnow
from servicekit.unit_of_work import Tx
from services.tagging.domain.tags import Assignment, Source, TagValue, may_remove, unchanged
from services.tagging.service.memberships import reevaluate
from services.tagging.store.assignments import AssignmentStore
from services.tagging.sync.connector import TagChange
from services.tagging.sync.store import SyncQueue


async def assign_tag(
    tx: Tx,
    *,
    tenant: str,
    customer_id: str,
    tag_id: str,
    value: TagValue,
    source: str,
    by: str,
    expires_at: datetime | None = None,
    now: datetime | None = None,
) -> bool:
    """Put the tag on (or change its value or expiry); False when nothing changed."""
    store = AssignmentStore(tx.db)
    existing = await store.get(tenant, customer_id, tag_id, session=tx.session)
    if unchanged(existing, value, expires_at):
        return False
    assignment = Assignment(
        tenant=tenant,
        customer_id=customer_id,
        tag_id=tag_id,
        value=value,
        source=Source(source),
        assigned_by=by,
        assigned_at=now or utcnow(),
        expires_at=expires_at,
    )
    await store.put(assignment, tx.session)
    await record_assigned(tx, [assignment])
    return True


async def remove_tag(
    tx: Tx,
    *,
    tenant: str,
    customer_id: str,
    tag_id: str,
    reason: str,
    by: str,
    now: datetime | None = None,
) -> bool:
    """Take the tag off; False when the customer did not have it (or a rule asks to remove
    a tag an operator put on: see `may_remove`)."""
    store = AssignmentStore(tx.db)
    existing = await store.get(tenant, customer_id, tag_id, session=tx.session)
    if existing is None or not may_remove(existing, reason):
        return False
    if not await store.delete(tenant, customer_id, tag_id, tx.session):
        return False
    await record_removed(tx, [existing], reason=reason, by=by, at=now or utcnow())
    return True


async def record_assigned(tx: Tx, assignments: list[Assignment]) -> None:
    """History, sync queue and `TagAssigned` for assignments already written."""
    if not assignments:
        return
    entries = [_history(a, "assigned", by=a.assigned_by, at=a.assigned_at) for a in assignments]
    await AssignmentStore(tx.db).record(entries, tx.session)
    await SyncQueue(tx.db).add([_change(a, "mark", a.assigned_at) for a in assignments], tx.session)
    events = [
        TagAssigned(
            customer_id=a.customer_id,
            tag_id=a.tag_id,
            value=a.value,
            source=str(a.source),
            assigned_by=a.assigned_by,
            assigned_at=a.assigned_at,
            expires_at=a.expires_at,
        )
        for a in assignments
    ]
    tenant = assignments[0].tenant
    await tx.emit(*events, tenant=tenant)
    await reevaluate(tx, tenant, [a.customer_id for a in assignments], utcnow())


async def record_removed(
    tx: Tx, removed: list[Assignment], *, reason: str, by: str, at: datetime
) -> None:
    """History, sync queue and `TagRemoved` for assignments already deleted."""
    if not removed:
        return
    entries = [_history(a, "removed", by=by, at=at, reason=reason) for a in removed]
    await AssignmentStore(tx.db).record(entries, tx.session)
    await SyncQueue(tx.db).add([_change(a, "unmark", at) for a in removed], tx.session)
    events = [
        TagRemoved(
            customer_id=a.customer_id, tag_id=a.tag_id, reason=reason, removed_by=by, removed_at=at
        )
        for a in removed
    ]
    tenant = removed[0].tenant
    await tx.emit(*events, tenant=tenant)
    await reevaluate(tx, tenant, [a.customer_id for a in removed], utcnow())


def _history(
    a: Assignment, action: str, *, by: str, at: datetime, reason: str | None = None
) -> dict[str, Any]:
    return {
        "tenant": a.tenant,
        "customer_id": a.customer_id,
        "tag_id": a.tag_id,
        "action": action,
        "value": a.value,
        "source": str(a.source),
        "expires_at": a.expires_at,
        "reason": reason,
        "by": by,
        "at": at,
    }


def _change(a: Assignment, action: Literal["mark", "unmark"], at: datetime) -> TagChange:
    # An ObjectId sorts by creation, so the sync log lists newest first by `_id`.
    return TagChange(
        change_id=str(ObjectId()),
        tenant=a.tenant,
        customer_id=a.customer_id,
        tag_id=a.tag_id,
        action=action,
        queued_at=at,
    )
