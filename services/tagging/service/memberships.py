"""Live segment membership: re-evaluating customers' memberships inside the caller's transaction
(the facts consumer's, a tag change's, a build's confirmation) and announcing who joined and
who left.

Every evaluation writes the customer's facts document too (the consumer saves it; the others
`touch` it). Two transactions evaluating one customer at once therefore always conflict on that
document and one retries on fresh facts: without that, an evaluation on stale facts could
commit a membership a newer one had just decided against."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from contracts.tagging import SegmentMemberJoined, SegmentMemberLeft
from servicekit.unit_of_work import Tx
from services.tagging.domain.facts_updates import FactsRecord
from services.tagging.domain.rules.cache import COMPILED
from services.tagging.domain.segments import (
    CompiledSegment,
    Segment,
    dependency_order,
    membership_change,
    memberships,
)
from services.tagging.domain.tags import tag_facts
from services.tagging.store.assignments import AssignmentStore
from services.tagging.store.facts import FactsStore
from services.tagging.store.memberships import Membership, MembershipStore
from services.tagging.store.segments import SegmentStore

Event = SegmentMemberJoined | SegmentMemberLeft


def compiled_segments(segments: Sequence[Segment]) -> list[CompiledSegment]:
    """The tenant's segments compiled, in dependency order."""
    by_id = {s.segment_id: s for s in segments}
    order = dependency_order({s.segment_id: s.rule for s in segments})
    return [
        CompiledSegment(s.segment_id, COMPILED.predicate(s.tenant, s.segment_id, s.version, s.rule))
        for s in (by_id[sid] for sid in order)
    ]


async def reevaluate(
    tx: Tx,
    tenant: str,
    customer_ids: Sequence[str],
    now: datetime,
    *,
    known: Mapping[str, FactsRecord | None] | None = None,
    touch: bool = True,
) -> list[Event]:
    """Re-evaluate the customers' memberships of every segment of the tenant, store what
    changed and emit the joins and leaves (which it returns). `known`:
    facts the caller already holds (and has saved: then `touch` is False)."""
    segments = await SegmentStore(tx.db).all(tenant, session=tx.session)
    if not segments or not customer_ids:
        return []
    ids = list(dict.fromkeys(customer_ids))
    if touch:
        await FactsStore(tx.db).touch(tenant, ids, tx.session)
    records = dict(known or {})
    missing = [c for c in ids if c not in records]
    if missing:
        records.update(await FactsStore(tx.db).many(tenant, missing, session=tx.session))
    tags = await AssignmentStore(tx.db).of_customers(tenant, ids, session=tx.session)
    current = await MembershipStore(tx.db).of_customers(tenant, ids, session=tx.session)
    compiled = compiled_segments(segments)
    evaluated = [s.segment_id for s in compiled]
    changed: list[Membership] = []
    events: list[Event] = []
    for cid in ids:
        record = records.get(cid)
        facts = record.facts(tag_facts(tags[cid], now)) if record and record.active else None
        before = current[cid]
        change = membership_change(before.segments, memberships(compiled, facts, now), evaluated)
        if not change.changed:
            continue
        since = {s: at for s, at in before.since.items() if s not in change.left}
        since.update({s: now for s in change.joined})
        changed.append(Membership(cid, since))
        events.extend(_events(cid, evaluated, change.joined, change.left, now))
    await MembershipStore(tx.db).save_many(tenant, changed, tx.session)
    if events:
        await tx.emit(*events, tenant=tenant)
    return events


def _events(
    customer_id: str,
    order: Sequence[str],
    joined: frozenset[str],
    left: frozenset[str],
    now: datetime,
) -> list[Event]:
    """Leaves, then joins, each in dependency order (a segment before those that test it)."""
    out: list[Event] = [
        SegmentMemberLeft(customer_id=customer_id, segment_id=s, left_at=now)
        for s in order
        if s in left
    ]
    out.extend(
        SegmentMemberJoined(customer_id=customer_id, segment_id=s, joined_at=now)
        for s in order
        if s in joined
    )
    return out
