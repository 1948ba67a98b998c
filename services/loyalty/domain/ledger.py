"""A customer's point account, kept as a ledger of lots.

Every earning is a lot with its own expiry; spending takes from the lot that expires first
(FEFO); an expired lot's remainder leaves with an expiry entry. Points held for a return
window are a pending lot: not spendable until released. Every change is an `Entry`, and the
account's balance always equals the sum of its entries' `points` (pending: of `pending`).

Negative balance policy: a reversal (a refunded order whose points were already spent) is
never refused. It takes what it can from the lots, and the rest becomes `debt`: the balance
goes negative by that much, nothing can be spent, and later earnings pay the debt off before
they make a spendable lot. Debt and spendable lots never exist together.

Pure: no I/O; every function returns the account after the change and the entries it wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from servicekit.errors import DomainError
from services.loyalty.domain.values import new_id


class EntryKind(StrEnum):
    EARNED = "earned"
    HELD = "held"
    RELEASED = "released"
    SPENT = "spent"
    EXPIRED = "expired"
    REVERSED = "reversed"
    ADJUSTED = "adjusted"
    RESTORED = "restored"
    #: A merge moved points from a duplicate to its survivor (an unmerge, back).
    TRANSFERRED_OUT = "transferred_out"
    TRANSFERRED_IN = "transferred_in"


class Lot(BaseModel):
    model_config = ConfigDict(frozen=True)

    lot_id: str
    points: int
    remaining: int
    earned_at: datetime
    expires_at: datetime
    source: str
    reminded: bool = False


class PendingLot(BaseModel):
    """Points earned but held (an order's return window) until `available_at`."""

    model_config = ConfigDict(frozen=True)

    lot_id: str
    points: int
    source: str
    held_at: datetime
    available_at: datetime
    expires_at: datetime


class LotMove(BaseModel):
    """What one entry did to one lot (so a spend can be put back exactly)."""

    model_config = ConfigDict(frozen=True)

    lot_id: str
    points: int
    expires_at: datetime


class Entry(BaseModel):
    model_config = ConfigDict(frozen=True)

    entry_id: str
    customer_id: str
    kind: EntryKind
    #: Change of the spendable balance (negative for spends, expiry, reversals).
    points: int
    #: Change of the held (pending) points.
    pending: int = 0
    #: Change of the debt a reversal left (positive: debt grew).
    debt: int = 0
    #: Unique per tenant: what made this entry, so the same cause never posts twice.
    source: str
    at: datetime
    balance_after: int
    lots: list[LotMove] = []
    reason: str | None = None
    operator: str | None = None
    order_id: str | None = None
    refund_id: str | None = None
    line_ids: list[str] = []
    #: The entry this one undoes or follows from (a restore names the spend).
    linked_entry_id: str | None = None


class PointAccount(BaseModel):
    model_config = ConfigDict(frozen=True)

    customer_id: str
    #: Lots with points left, first to expire first.
    lots: list[Lot] = []
    pending: list[PendingLot] = []
    debt: int = 0
    #: Points earned from orders per day (the tenant's days; the last few only), for the cap.
    daily_earned: dict[str, int] = {}
    #: From the customer's profile: the month a birthday bonus is due in.
    birthday_month: int | None = None
    #: The year a birthday bonus was last given (one a year).
    birthday_bonus_year: int | None = None
    version: int = 0

    @property
    def balance(self) -> int:
        return sum(lot.remaining for lot in self.lots) - self.debt

    @property
    def pending_points(self) -> int:
        return sum(p.points for p in self.pending)

    def next_due_at(self, remind_ahead: float) -> datetime | None:
        """When maturing has something to do next (release, expiry or a reminder)."""
        times = [p.available_at for p in self.pending]
        times += [lot.expires_at for lot in self.lots]
        times += [lot.expires_at - _days(remind_ahead) for lot in self.lots if not lot.reminded]
        return min(times, default=None)


class InsufficientPoints(DomainError):
    def __init__(self, wanted: int, balance: int) -> None:
        super().__init__(
            f"{wanted} points wanted, {max(balance, 0)} available",
            code="insufficient_points",
            wanted=wanted,
            available=max(balance, 0),
        )


@dataclass(frozen=True)
class Posted:
    """An account after a change, and the entries that change wrote."""

    account: PointAccount
    entries: list[Entry] = field(default_factory=list)

    def then(self, other: Posted) -> Posted:
        return Posted(other.account, [*self.entries, *other.entries])


@dataclass(frozen=True)
class Cause:
    """Why an entry is written: its unique source and what it links to."""

    source: str
    at: datetime
    reason: str | None = None
    operator: str | None = None
    order_id: str | None = None
    refund_id: str | None = None
    line_ids: tuple[str, ...] = ()
    linked_entry_id: str | None = None


def _days(n: float) -> timedelta:
    return timedelta(days=n)


def _entry(account: PointAccount, kind: EntryKind, cause: Cause, **change: object) -> Entry:
    return Entry(
        entry_id=new_id("pe"),
        customer_id=account.customer_id,
        kind=kind,
        source=cause.source,
        at=cause.at,
        balance_after=account.balance,
        reason=cause.reason,
        operator=cause.operator,
        order_id=cause.order_id,
        refund_id=cause.refund_id,
        line_ids=list(cause.line_ids),
        linked_entry_id=cause.linked_entry_id,
        **change,  # type: ignore[arg-type]
    )


def _fefo(lots: list[Lot]) -> list[Lot]:
    return sorted(lots, key=lambda lot: (lot.expires_at, lot.earned_at, lot.lot_id))


# ------------------------------------------------------------------------------ credit


def credit(
    account: PointAccount,
    points: int,
    cause: Cause,
    *,
    expires_at: datetime,
    kind: EntryKind = EntryKind.EARNED,
    lot_source: str | None = None,
) -> Posted:
    """Add points: debt is paid off first, the rest becomes a lot expiring at `expires_at`."""
    paid_off = min(points, account.debt)
    rest = points - paid_off
    lots = list(account.lots)
    moves: list[LotMove] = []
    if rest:
        lot = Lot(
            lot_id=new_id("lot"),
            points=rest,
            remaining=rest,
            earned_at=cause.at,
            expires_at=expires_at,
            source=lot_source or cause.source,
        )
        lots = _fefo([*lots, lot])
        moves.append(LotMove(lot_id=lot.lot_id, points=rest, expires_at=expires_at))
    after = account.model_copy(update={"lots": lots, "debt": account.debt - paid_off})
    return Posted(after, [_entry(after, kind, cause, points=points, debt=-paid_off, lots=moves)])


def hold(
    account: PointAccount,
    points: int,
    cause: Cause,
    *,
    available_at: datetime,
    expires_at: datetime,
) -> Posted:
    """Earn points that become spendable only at `available_at` (the return window)."""
    lot = PendingLot(
        lot_id=new_id("lot"),
        points=points,
        source=cause.source,
        held_at=cause.at,
        available_at=available_at,
        expires_at=expires_at,
    )
    after = account.model_copy(update={"pending": [*account.pending, lot]})
    return Posted(after, [_entry(after, EntryKind.HELD, cause, points=0, pending=points)])


# ------------------------------------------------------------------------------- debit


def debit(
    account: PointAccount,
    points: int,
    cause: Cause,
    *,
    kind: EntryKind,
    allow_debt: bool = False,
    prefer_source: str | None = None,
) -> Posted:
    """Take points first-expiring-first (lots of `prefer_source` before any other). Without
    `allow_debt` a debit beyond the balance is refused; with it the rest becomes debt."""
    if not allow_debt and points > account.balance:
        raise InsufficientPoints(points, account.balance)
    preferred = [lot for lot in account.lots if lot.source == prefer_source]
    others = [lot for lot in account.lots if lot.source != prefer_source]
    left, moves, kept = points, [], []
    for lot in [*preferred, *others]:
        take = min(left, lot.remaining)
        left -= take
        if take:
            moves.append(LotMove(lot_id=lot.lot_id, points=-take, expires_at=lot.expires_at))
        if lot.remaining - take:
            kept.append(lot.model_copy(update={"remaining": lot.remaining - take}))
    after = account.model_copy(update={"lots": _fefo(kept), "debt": account.debt + left})
    return Posted(after, [_entry(after, kind, cause, points=-points, debt=left, lots=moves)])


def release_held(account: PointAccount, source: str, points: int, cause: Cause) -> Posted:
    """Take back up to `points` still held for `source` (a refund inside the return
    window); any rest the caller reverses from the balance."""
    kept, taken = [], 0
    for lot in account.pending:
        take = min(points - taken, lot.points) if lot.source == source else 0
        taken += take
        if lot.points - take:
            kept.append(lot.model_copy(update={"points": lot.points - take}))
    if not taken:
        return Posted(account)
    after = account.model_copy(update={"pending": kept})
    return Posted(after, [_entry(after, EntryKind.REVERSED, cause, points=0, pending=-taken)])


def restore(account: PointAccount, spent: Entry, cause: Cause) -> Posted:
    """Put back exactly what a spend took, into the lots it took from, with their expiry
    (a lot already past expiry leaves again at the next maturing). Debt is paid first."""
    points = -spent.points
    paid_off = min(points, account.debt)
    left = points - paid_off
    lots = {lot.lot_id: lot for lot in account.lots}
    moves = []
    for move in reversed([m for m in spent.lots if m.points < 0]):
        back = min(left, -move.points)
        if not back:
            continue
        left -= back
        # A lot gone since (spent out or expired) comes back under a new id: its expiry
        # entry, if it expires again, must not repeat the first one's source.
        lot = lots.get(move.lot_id) or Lot(
            lot_id=new_id("lot"),
            points=0,
            remaining=0,
            earned_at=cause.at,
            expires_at=move.expires_at,
            source=spent.source,
        )
        lots[lot.lot_id] = lot.model_copy(update={"remaining": lot.remaining + back})
        moves.append(LotMove(lot_id=lot.lot_id, points=back, expires_at=move.expires_at))
    if left:  # only a spend within the balance is ever restored
        raise ValueError(f"entry {spent.entry_id} took more than its lots: it is not a spend")
    debt = account.debt - paid_off
    after = account.model_copy(update={"lots": _fefo(list(lots.values())), "debt": debt})
    change = {"points": points, "debt": -paid_off, "lots": moves}
    return Posted(after, [_entry(after, EntryKind.RESTORED, cause, **change)])


# ------------------------------------------------------------------------------ mature


@dataclass(frozen=True)
class ExpiryNotice:
    """Points that will expire at `expires_at`, to remind the customer of."""

    points: int
    expires_at: datetime


def release_due(account: PointAccount, now: datetime) -> Posted:
    """Held points whose return window has closed become spendable lots."""
    posted = Posted(account)
    for lot in account.pending:
        if lot.available_at > now:
            continue
        cause = Cause(source=f"released:{lot.lot_id}", at=lot.available_at)
        current = posted.account
        without = current.model_copy(
            update={"pending": [p for p in current.pending if p.lot_id != lot.lot_id]}
        )
        step = credit(
            without,
            lot.points,
            cause,
            expires_at=lot.expires_at,
            kind=EntryKind.RELEASED,
            lot_source=lot.source,
        )
        entry = step.entries[0].model_copy(update={"pending": -lot.points})
        posted = Posted(step.account, [*posted.entries, entry])
    return posted


def expire_due(account: PointAccount, now: datetime) -> Posted:
    """Each lot past its expiry leaves with an expiry entry for what remained of it."""
    posted = Posted(account)
    for lot in account.lots:
        if lot.expires_at > now:
            continue
        current = posted.account
        after = current.model_copy(
            update={"lots": [x for x in current.lots if x.lot_id != lot.lot_id]}
        )
        cause = Cause(source=f"expired:{lot.lot_id}", at=lot.expires_at)
        move = LotMove(lot_id=lot.lot_id, points=-lot.remaining, expires_at=lot.expires_at)
        entry = _entry(after, EntryKind.EXPIRED, cause, points=-lot.remaining, lots=[move])
        posted = Posted(after, [*posted.entries, entry])
    return posted


def reminders_due(
    account: PointAccount, now: datetime, remind_ahead: float
) -> tuple[PointAccount, list[ExpiryNotice]]:
    """Lots expiring within `remind_ahead` days not yet reminded of: one notice per
    expiry time, and the lots marked reminded."""
    due: dict[datetime, int] = {}
    lots = []
    for lot in account.lots:
        if not lot.reminded and lot.expires_at - _days(remind_ahead) <= now < lot.expires_at:
            due[lot.expires_at] = due.get(lot.expires_at, 0) + lot.remaining
            lot = lot.model_copy(update={"reminded": True})
        lots.append(lot)
    notices = [ExpiryNotice(points, at) for at, points in sorted(due.items())]
    return account.model_copy(update={"lots": lots}), notices


def mature(
    account: PointAccount, now: datetime, remind_ahead: float
) -> tuple[Posted, list[ExpiryNotice]]:
    """Everything time has made due by `now`: releases, then expiries, then reminders."""
    posted = release_due(account, now)
    posted = posted.then(expire_due(posted.account, now))
    reminded, notices = reminders_due(posted.account, now, remind_ahead)
    return Posted(reminded, posted.entries), notices
