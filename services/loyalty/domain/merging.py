"""What a customer merge does to points: the duplicate's lots (with their expiry and
source, so a later refund of its orders still finds them), held points and debt move to
the survivor; an unmerge moves back the lots and held points that came over, as far as
they are still there (what was spent or expired meanwhile is not conjured back).

Each move is a pair of entries (out of one account, into the other), so both balances
stay equal to the sums of their entries. Pure."""

from __future__ import annotations

from services.loyalty.domain import ledger
from services.loyalty.domain.ledger import (
    Cause,
    EntryKind,
    Lot,
    LotMove,
    PendingLot,
    PointAccount,
    Posted,
)
from services.loyalty.domain.values import new_id


def _entry(
    account: PointAccount,
    kind: EntryKind,
    cause: Cause,
    points: int,
    pending: int,
    debt: int,
    lots: list[Lot],
) -> ledger.Entry:
    sign = -1 if kind == EntryKind.TRANSFERRED_OUT else 1
    return ledger.Entry(
        entry_id=new_id("pe"),
        customer_id=account.customer_id,
        kind=kind,
        points=points,
        pending=pending,
        debt=debt,
        source=cause.source,
        at=cause.at,
        balance_after=account.balance,
        lots=[
            LotMove(lot_id=x.lot_id, points=sign * x.remaining, expires_at=x.expires_at)
            for x in lots
        ],
        reason=cause.reason,
        linked_entry_id=cause.linked_entry_id,
    )


def take_out(
    account: PointAccount, lots: list[Lot], pending: list[PendingLot], debt: int, cause: Cause
) -> Posted:
    """`account` without these lots, held lots and debt."""
    lot_ids = {x.lot_id for x in lots}
    pending_ids = {p.lot_id for p in pending}
    after = account.model_copy(
        update={
            "lots": [x for x in account.lots if x.lot_id not in lot_ids],
            "pending": [p for p in account.pending if p.lot_id not in pending_ids],
            "debt": account.debt - debt,
        }
    )
    moved = sum(x.remaining for x in lots)
    held = sum(p.points for p in pending)
    entry = _entry(after, EntryKind.TRANSFERRED_OUT, cause, debt - moved, -held, -debt, lots)
    return Posted(after, [entry] if moved or held or debt else [])


def bring_in(
    account: PointAccount, lots: list[Lot], pending: list[PendingLot], debt: int, cause: Cause
) -> Posted:
    """`account` with these lots, held lots and debt added; debt and lots then settle
    against each other (first-expiring lots pay the debt), as everywhere in the ledger."""
    moved = sum(x.remaining for x in lots)
    held = sum(p.points for p in pending)
    if not (moved or held or debt):
        return Posted(account)
    ordered = sorted([*account.lots, *lots], key=lambda x: (x.expires_at, x.earned_at, x.lot_id))
    added = account.model_copy(update={"lots": ordered, "pending": [*account.pending, *pending]})
    entries = []
    if moved or held:
        entries.append(_entry(added, EntryKind.TRANSFERRED_IN, cause, moved, held, 0, lots))
    owed = account.debt + debt
    if not owed or not (debt or lots):
        return Posted(added, entries)
    cleared = added.model_copy(update={"debt": 0})
    settling = Cause(source=f"{cause.source}:debt", at=cause.at, reason=cause.reason)
    step = ledger.debit(cleared, owed, settling, kind=EntryKind.TRANSFERRED_IN, allow_debt=True)
    # Of what the debit took, only the incoming debt changes the balance.
    debt_change = step.account.debt - account.debt
    entry = step.entries[0].model_copy(update={"points": -debt, "debt": debt_change})
    return Posted(step.account, [*entries, entry])


def _sides(cause: Cause) -> tuple[Cause, Cause]:
    out = Cause(source=f"{cause.source}:out", at=cause.at, reason=cause.reason)
    into = Cause(source=f"{cause.source}:in", at=cause.at, reason=cause.reason)
    return out, into


def merge(duplicate: PointAccount, survivor: PointAccount, cause: Cause) -> tuple[Posted, Posted]:
    """Everything of the duplicate to the survivor."""
    out, into = _sides(cause)
    lots, pending, debt = duplicate.lots, duplicate.pending, duplicate.debt
    return take_out(duplicate, lots, pending, debt, out), bring_in(
        survivor, lots, pending, debt, into
    )


def unmerge(
    survivor: PointAccount,
    restored: PointAccount,
    lot_ids: set[str],
    pending_ids: set[str],
    cause: Cause,
) -> tuple[Posted, Posted]:
    """Back to the restored customer: the lots and held lots that came from it and are
    still on the survivor's account, as they now stand."""
    out, into = _sides(cause)
    lots = [x for x in survivor.lots if x.lot_id in lot_ids]
    pending = [p for p in survivor.pending if p.lot_id in pending_ids]
    return take_out(survivor, lots, pending, 0, out), bring_in(restored, lots, pending, 0, into)
