"""Points and growth value from the customer service's order events.

Paid: the order's points are worked out line by line (the best of the tier's multiplier
and any points-multiplier benefit the customer holds by card or grant, then category and
campaign multipliers, caps, first-order and birthday bonuses) and credited, or held for the return
window; growth value moves the tier. Refunded: exactly the refunded lines' points go back
(held points first, then the order's own lots, then others; the rest is debt), and the
growth value in proportion. Cancelled after payment: whatever is left goes back.

Each runs inside the consumer's transaction (which also records the event id); the order's
earning record makes a repeat of the same order or refund change nothing besides."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from contracts.customer import OrderCancelled, OrderPaid, OrderRefunded
from contracts.loyalty import PointsEarned, PointsReversed
from servicekit.clock import utcnow
from servicekit.unit_of_work import Tx
from services.loyalty.domain import ledger
from services.loyalty.domain import orders as order_rules
from services.loyalty.domain.earning import EarningRule, Line, order_points
from services.loyalty.domain.ledger import Cause, EntryKind
from services.loyalty.domain.orders import OrderEarning, Reversal
from services.loyalty.domain.tiers import GrowthBasis
from services.loyalty.service.accounts import OpenAccount, commit, open_account
from services.loyalty.service.benefits import granted_multiplier
from services.loyalty.service.tiers import Standing, grow, standing
from services.loyalty.store.merges import MergeStore
from services.loyalty.store.points import OrderEarningStore

#: Days of the daily-cap tally kept on an account.
TALLY_DAYS = 3


async def on_order_paid(tx: Tx, tenant: str, event: OrderPaid) -> OrderEarning | None:
    earnings = OrderEarningStore(tx.db)
    if await earnings.load(tenant, event.order_id, session=tx.session) is not None:
        return None  # this order has earned already
    # A merge is keyed by its survivor and the order by its customer, so a duplicate's order
    # paid just before its merge may arrive after it: it earns for the survivor.
    survivor = await MergeStore(tx.db).survivor_of(tenant, event.customer_id, tx.session)
    if survivor is not None:
        event = event.model_copy(update={"customer_id": survivor})
    opened = await open_account(tx, tenant, event.customer_id, utcnow())
    held = await standing(tx, tenant, event.customer_id)
    multiplier = max(
        held.points_multiplier,
        await granted_multiplier(tx, tenant, event.customer_id, event.paid_at),
    )
    earning = _earn(opened, held, event, multiplier)
    await earnings.put(tenant, earning, tx.session)
    await commit(tx, opened)
    await grow(tx, tenant, held, earning.growth, event.paid_at)
    return earning


def _earn(opened: OpenAccount, held: Standing, event: OrderPaid, multiplier: int) -> OrderEarning:
    rule, account = opened.rule, opened.account
    day = rule.day_of(event.paid_at)
    birthday = _birthday_due(opened, event.paid_at)
    points = order_points(
        rule,
        [Line(line_id=x.line_id, category=x.category, amount=x.amount) for x in event.lines],
        at=event.paid_at,
        tier_multiplier=multiplier,
        earned_today=account.daily_earned.get(day, 0),
        first_order=event.first_order,
        birthday=birthday,
    )
    growth = points.total if _basis(held) == GrowthBasis.POINTS else event.amount // 100
    hold = rule.hold_days > 0
    earning = order_rules.earned(
        event.order_id,
        event.customer_id,
        event.amount,
        event.paid_at,
        points,
        held=hold,
        growth=growth,
    )
    if points.total:
        _credit(opened, earning, event.paid_at)
    tally = {d: n for d, n in account.daily_earned.items() if d >= _days_before(day)}
    tally[day] = tally.get(day, 0) + points.total - points.bonus
    update: dict[str, object] = {"daily_earned": tally}
    if "birthday" in points.bonuses:
        update["birthday_bonus_year"] = event.paid_at.year
    opened.account = opened.account.model_copy(update=update)
    return earning


def _credit(opened: OpenAccount, earning: OrderEarning, paid_at: datetime) -> None:
    rule = opened.rule
    cause = Cause(source=earning.source, at=opened.now, order_id=earning.order_id)
    available_at = rule.available_at(paid_at)
    expires_at = rule.expires_at(available_at)
    if earning.held:
        posted = ledger.hold(
            opened.account,
            earning.points,
            cause,
            available_at=available_at,
            expires_at=expires_at,
        )
    else:
        posted = ledger.credit(opened.account, earning.points, cause, expires_at=expires_at)
    opened.post(posted)
    opened.events.append(
        PointsEarned(
            customer_id=earning.customer_id,
            points=earning.points,
            source=earning.source,
            order_id=earning.order_id,
            held=earning.held,
            available_at=available_at if earning.held else None,
            expires_at=expires_at,
            balance=opened.account.balance,
            pending=opened.account.pending_points,
            earned_at=opened.now,
        )
    )


def _birthday_due(opened: OpenAccount, paid_at: datetime) -> bool:
    account = opened.account
    month = paid_at.astimezone(_zone(opened.rule)).month
    return account.birthday_month == month and account.birthday_bonus_year != paid_at.year


def _zone(rule: EarningRule) -> ZoneInfo:
    return ZoneInfo(rule.timezone)


def _days_before(day: str) -> str:
    return (date.fromisoformat(day) - timedelta(days=TALLY_DAYS)).isoformat()


def _basis(held: Standing) -> GrowthBasis:
    return held.scheme.growth_basis if held.scheme else GrowthBasis.SPEND


async def on_order_refunded(tx: Tx, tenant: str, event: OrderRefunded) -> None:
    earnings = OrderEarningStore(tx.db)
    earning = await earnings.load(tenant, event.order_id, session=tx.session)
    if earning is None or event.refund_id in earning.refund_ids or earning.voided:
        return  # earned nothing here, or this refund is taken back already
    refunded: dict[str, int] = {}
    for line in event.lines:
        refunded[line.line_id] = refunded.get(line.line_id, 0) + line.amount
    after, reversal = order_rules.refund(
        earning, event.refund_id, refunded, fully_refunded=event.fully_refunded
    )
    await _take_back(tx, tenant, earning, after, reversal, f"refund:{event.refund_id}")


async def on_order_cancelled(tx: Tx, tenant: str, event: OrderCancelled) -> None:
    earnings = OrderEarningStore(tx.db)
    earning = await earnings.load(tenant, event.order_id, session=tx.session)
    if earning is None or earning.voided or not event.was_paid:
        return
    after, reversal = order_rules.void(earning)
    await _take_back(tx, tenant, earning, after, reversal, "void")


async def _take_back(
    tx: Tx,
    tenant: str,
    before: OrderEarning,
    after: OrderEarning,
    reversal: Reversal,
    what: str,
) -> None:
    await OrderEarningStore(tx.db).put(tenant, after, tx.session)
    refund_id = what.removeprefix("refund:") if what.startswith("refund:") else None
    if reversal.points:
        opened = await open_account(tx, tenant, before.customer_id, utcnow())
        debt = _reverse(opened, before, reversal, what, refund_id)
        opened.events.append(
            PointsReversed(
                customer_id=before.customer_id,
                points=reversal.points,
                order_id=before.order_id,
                refund_id=refund_id,
                line_ids=reversal.line_ids,
                debt=debt,
                balance=opened.account.balance,
                pending=opened.account.pending_points,
                reversed_at=opened.now,
            )
        )
        await commit(tx, opened)
    held = await standing(tx, tenant, before.customer_id)
    await grow(tx, tenant, held, -reversal.growth, utcnow())


def _reverse(
    opened: OpenAccount, earning: OrderEarning, reversal: Reversal, what: str, refund_id: str | None
) -> int:
    """Held points of the order first, then its lots, then any others; returns the debt
    this left."""

    def cause(suffix: str = "") -> Cause:
        return Cause(
            source=f"{earning.source}:{what}{suffix}",
            at=opened.now,
            order_id=earning.order_id,
            refund_id=refund_id,
            line_ids=tuple(reversal.line_ids),
        )

    posted = ledger.release_held(opened.account, earning.source, reversal.points, cause(":held"))
    opened.post(posted)
    rest = reversal.points - sum(-e.pending for e in posted.entries)
    if not rest:
        return 0
    debited = ledger.debit(
        opened.account,
        rest,
        cause(),
        kind=EntryKind.REVERSED,
        allow_debt=True,
        prefer_source=earning.source,
    )
    return opened.post(debited)[0].debt
