"""Customer merge events as the customer service publishes them (keyed by the survivor)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from contracts.customer import CustomersMerged, CustomersUnmerged


def merged(survivor: str, duplicate: str, merge_id: str | None = None) -> CustomersMerged:
    return CustomersMerged(
        merge_id=merge_id or f"mrg_{uuid.uuid4().hex[:8]}",
        survivor_id=survivor,
        merged_id=duplicate,
        merged_by="ops-1",
        merged_at=datetime.now(UTC),
    )


def unmerged(merge: CustomersMerged) -> CustomersUnmerged:
    """The undoing of `merge`."""
    return CustomersUnmerged(
        merge_id=merge.merge_id,
        survivor_id=merge.survivor_id,
        restored_id=merge.merged_id,
        unmerged_by="ops-1",
        unmerged_at=datetime.now(UTC),
    )
