"""Duplicate merge (客户合并) and its undo (unmerge).

Pure: no I/O. A merge keeps one survivor: it takes the duplicate's identities, fills its own
empty fields from the duplicate, appends the duplicate's stage and owner history, and takes
over its consents, behaviour, orders, statistics and follow-ups. The duplicate stays, marked
`merged`, and the merge record keeps both customers as they were, so nothing is lost and the
merge can be undone within the window.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from servicekit.errors import Conflict
from services.customer.domain.consent import Consent, ConsentRequest, record
from services.customer.domain.customer import (
    Customer,
    Identity,
    OwnerChange,
    StageChange,
    Status,
)
from services.customer.domain.orders import Order, OrderStatus
from services.customer.domain.purchase_stats import PurchaseStats

#: Profile fields the survivor takes from the duplicate when it has none of its own.
FILLABLE = ("mobile", "email", "id_number", "address", "birthday")


class DuplicateReason(StrEnum):
    MOBILE = "mobile"
    EMAIL = "email"
    UNION_ID = "union_id"


class MergeStatus(StrEnum):
    DONE = "done"
    UNDONE = "undone"


class MergeGains(BaseModel):
    """What the survivor gained from the duplicate: exactly what an undo takes back.
    Field and custom field values are in their JSON form, as a record stores them."""

    fields: dict[str, Any] = Field(default_factory=dict)
    identities: list[Identity] = Field(default_factory=list)
    custom_fields: dict[str, Any] = Field(default_factory=dict)
    stage_history: list[StageChange] = Field(default_factory=list)
    owner_history: list[OwnerChange] = Field(default_factory=list)


class MovedRecords(BaseModel):
    """The natural keys of every record re-keyed from the duplicate to the survivor."""

    behaviour: list[str] = Field(default_factory=list)
    orders: list[str] = Field(default_factory=list)
    follow_ups: list[str] = Field(default_factory=list)
    #: `channel/purpose` of consents only the duplicate had: moved whole, with their history.
    consents: list[str] = Field(default_factory=list)
    #: `channel/purpose` of the survivor's consents a newer decision of the duplicate changed.
    consents_overridden: list[str] = Field(default_factory=list)


class MergeRecord(BaseModel):
    id: str
    tenant: str
    survivor_id: str
    merged_id: str
    reason: str
    merged_by: str
    merged_at: datetime
    undo_until: datetime
    status: MergeStatus = MergeStatus.DONE
    undone_at: datetime | None = None
    undone_by: str | None = None
    gains: MergeGains
    moved: MovedRecords = Field(default_factory=MovedRecords)
    #: Before-images. None once an erasure removed that person's data from the record.
    survivor_before: Customer | None
    merged_before: Customer | None
    survivor_consents_before: list[Consent] = Field(default_factory=list)
    survivor_stats_before: PurchaseStats | None = None
    merged_stats_before: PurchaseStats | None = None


def new_merge_id() -> str:
    return f"mrg_{uuid.uuid4().hex}"


# ------------------------------------------------------------------------ duplicates


def duplicate_reasons(customer: Customer, candidate: Customer) -> list[DuplicateReason]:
    """Why `candidate` looks like the same person as `customer` (exact matches only)."""
    reasons = []
    if customer.mobile and customer.mobile == candidate.mobile:
        reasons.append(DuplicateReason.MOBILE)
    if customer.email and customer.email == candidate.email:
        reasons.append(DuplicateReason.EMAIL)
    if _union_ids(customer) & _union_ids(candidate):
        reasons.append(DuplicateReason.UNION_ID)
    return reasons


def _union_ids(customer: Customer) -> set[str]:
    return {i.value for i in customer.identities if i.kind == "union_id"}


# ----------------------------------------------------------------------------- merge


def check_mergeable(survivor: Customer, merged: Customer) -> None:
    if survivor.id == merged.id:
        raise Conflict("a customer cannot be merged into itself", code="same_customer")
    for role, customer in (("survivor", survivor), ("merged customer", merged)):
        if customer.status is not Status.ACTIVE:
            raise Conflict(
                f"the {role} {customer.id} is {customer.status}, not active",
                code=f"customer_{customer.status}",
                customer_id=customer.id,
            )


def absorb(survivor: Customer, merged: Customer, *, at: datetime) -> tuple[Customer, MergeGains]:
    """The survivor after taking what the duplicate has and it lacks, and what it gained."""
    theirs, mine = merged.model_dump(mode="json"), survivor.model_dump(mode="json")
    gains = MergeGains(
        fields={f: theirs[f] for f in FILLABLE if mine[f] is None and theirs[f] is not None},
        identities=[i for i in merged.identities if i not in survivor.identities],
        custom_fields={
            k: v for k, v in theirs["custom_fields"].items() if k not in survivor.custom_fields
        },
        stage_history=list(merged.stage_history),
        owner_history=list(merged.owner_history),
    )
    after = survivor.model_copy(
        update={
            **{f: getattr(merged, f) for f in gains.fields},
            "identities": [*survivor.identities, *gains.identities],
            "custom_fields": {
                **survivor.custom_fields,
                **{k: merged.custom_fields[k] for k in gains.custom_fields},
            },
            "stage_history": _by_time([*survivor.stage_history, *gains.stage_history]),
            "owner_history": _by_time([*survivor.owner_history, *gains.owner_history]),
            "updated_at": at,
        },
        deep=True,
    )
    return after, gains


def mark_merged(merged: Customer, *, into: str, at: datetime) -> Customer:
    """The duplicate keeps its data (for the record and an undo) but no longer acts."""
    return merged.model_copy(
        update={"status": Status.MERGED, "merged_into": into, "updated_at": at}
    )


def _by_time(entries: list[Any]) -> list[Any]:
    # Stable: entries of the same instant keep the survivor's first.
    return sorted(entries, key=lambda e: e.at)


# ----------------------------------------------------------------------------- undo


def check_undoable(record: MergeRecord, survivor: Customer, *, now: datetime) -> None:
    if record.status is MergeStatus.UNDONE:
        raise Conflict("this merge was undone already", code="merge_undone")
    if now > record.undo_until:
        raise Conflict(
            f"a merge can be undone until {record.undo_until.isoformat()}",
            code="undo_window_passed",
        )
    if record.merged_before is None or record.survivor_before is None:
        raise Conflict("a customer of this merge was erased since", code="customer_erased")
    if survivor.status is not Status.ACTIVE:
        # Merged again (or erased): its data now lives elsewhere; undo that first.
        raise Conflict(
            f"the survivor is {survivor.status} since this merge",
            code=f"survivor_{survivor.status}",
        )


def undo_until(merged_at: datetime, window_days: int) -> datetime:
    return merged_at + timedelta(days=window_days)


def separate(survivor: Customer, gains: MergeGains, *, at: datetime) -> Customer:
    """The survivor minus what the merge gave it. A gained value changed since belongs to
    the survivor now and stays."""
    now = survivor.model_dump(mode="json")
    fields = {f: None for f, v in gains.fields.items() if now[f] == v}
    custom = {
        k: v
        for k, v in survivor.custom_fields.items()
        if k not in gains.custom_fields or gains.custom_fields[k] != now["custom_fields"][k]
    }
    return survivor.model_copy(
        update={
            **fields,
            "identities": [i for i in survivor.identities if i not in gains.identities],
            "custom_fields": custom,
            "stage_history": _without(survivor.stage_history, gains.stage_history),
            "owner_history": _without(survivor.owner_history, gains.owner_history),
            "updated_at": at,
        },
        deep=True,
    )


def _without(entries: list[Any], gained: list[Any]) -> list[Any]:
    left = list(gained)
    kept = []
    for entry in entries:
        if entry in left:
            left.remove(entry)
        else:
            kept.append(entry)
    return kept


def restored(before: Customer, current: Customer, *, at: datetime) -> Customer:
    """The duplicate as it was before the merge, at the current version (the store's
    optimistic check is against the current one)."""
    return before.model_copy(update={"version": current.version, "updated_at": at})


# -------------------------------------------------------------------------- consents


def consent_key(consent: Consent) -> str:
    return f"{consent.channel}/{consent.purpose}"


def consents_to_move(survivor: list[Consent], merged: list[Consent]) -> list[Consent]:
    """The duplicate's consents for a channel and purpose the survivor never recorded."""
    held = {consent_key(c) for c in survivor}
    return [c for c in merged if consent_key(c) not in held]


def consent_overrides(
    survivor: list[Consent], merged: list[Consent], *, by: str, at: datetime
) -> list[Consent]:
    """Where both recorded a decision, the person's newest one wins: the survivor's consent
    after the duplicate's newer, different decision (a later withdrawal is never lost)."""
    theirs = {consent_key(c): c for c in merged}
    changed = []
    for mine in survivor:
        other = theirs.get(consent_key(mine))
        if other is None or other.changed_at <= mine.changed_at:
            continue
        request = ConsentRequest(
            tenant=mine.tenant,
            customer_id=mine.customer_id,
            channel=mine.channel,
            purpose=mine.purpose,
            granted=other.allowed,
            source="merge",
            recorded_by=by,
            at=at,
        )
        after = record(mine, request)
        if after is not None:
            changed.append(after)
    return changed


# ---------------------------------------------------------------------- statistics


def combined_stats(
    survivor: PurchaseStats | None, merged: PurchaseStats | None, *, survivor_id: str, at: datetime
) -> PurchaseStats | None:
    """The survivor's statistics with the duplicate's added: counts and amounts summed, the
    earliest first and latest last purchase. None when neither has any."""
    if merged is None:
        return None
    base = survivor or PurchaseStats(customer_id=survivor_id)
    if base.currency not in (None, merged.currency) and merged.currency is not None:
        raise Conflict(
            f"the customers' orders are in {base.currency} and {merged.currency}",
            code="currency_mismatch",
        )
    return base.model_copy(
        update={
            "currency": base.currency or merged.currency,
            "order_count": base.order_count + merged.order_count,
            "total_paid": base.total_paid + merged.total_paid,
            "total_refunded": base.total_refunded + merged.total_refunded,
            "first_purchase_at": _extreme(min, base.first_purchase_at, merged.first_purchase_at),
            "last_purchase_at": _extreme(max, base.last_purchase_at, merged.last_purchase_at),
            "first_order_id": _first_order(base, merged),
            "changed_at": at,
        }
    )


def stats_from_orders(
    base: PurchaseStats, orders: list[Order], *, at: datetime
) -> PurchaseStats | None:
    """A customer's statistics recounted from the orders they hold, the way the order rules
    count them (paid, less voided; refunds kept). Used on undo, where subtracting what the
    duplicate brought would miss refunds reported while its orders were the survivor's."""
    counted = [o for o in orders if o.paid_at is not None and o.status != OrderStatus.CANCELLED]
    if not orders:
        return None
    first = min(counted, key=lambda o: o.paid_at or at, default=None)
    return base.model_copy(
        update={
            "currency": first.currency if first else base.currency,
            "order_count": len(counted),
            "total_paid": sum(o.amount for o in counted),
            "total_refunded": sum(o.refunded_amount for o in counted),
            "first_purchase_at": first.paid_at if first else None,
            "last_purchase_at": max((o.paid_at for o in counted if o.paid_at), default=None),
            "first_order_id": _first_order_of(orders, base.first_order_id),
            "changed_at": at,
        }
    )


def _first_order_of(orders: list[Order], known: str | None) -> str | None:
    """The order flagged first among those held, else the known first if still held."""
    flagged = next((o.order_id for o in orders if o.first_order), None)
    return flagged or (known if known in {o.order_id for o in orders} else None)


def _extreme(pick: Any, a: datetime | None, b: datetime | None) -> datetime | None:
    present = [d for d in (a, b) if d is not None]
    return pick(present) if present else None


def _first_order(a: PurchaseStats, b: PurchaseStats) -> str | None:
    if a.first_order_id is None or b.first_order_id is None:
        return a.first_order_id or b.first_order_id
    a_first, b_first = a.first_purchase_at, b.first_purchase_at
    return b.first_order_id if a_first and b_first and b_first < a_first else a.first_order_id
