"""Point use cases called over HTTP: the account and its ledger, manual adjustments,
redemption for goods, paying for an order with points (capped), and the maturing sweep.

Every change is idempotent by its request's key: the key is the ledger entry's source
(unique per tenant), so the same request again answers with the entry it posted, and two
copies at once post once (the loser's transaction hits the unique source and runs again)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from contracts.loyalty import PointsAdjusted, PointsRestored, PointsSpent
from servicekit.clock import utcnow
from servicekit.errors import Conflict, DomainError, NotFound
from servicekit.pagination import PageRequest
from servicekit.unit_of_work import Tx, UnitOfWork
from services.loyalty.domain import ledger
from services.loyalty.domain.earning import EarningRule
from services.loyalty.domain.ledger import Cause, Entry, EntryKind, PointAccount
from services.loyalty.service.accounts import OpenAccount, commit, open_account
from services.loyalty.store.points import AccountStore, EntryStore
from services.loyalty.store.races import settle
from services.loyalty.store.schemes import SchemeStore


@dataclass(frozen=True)
class Posting:
    """The entry a request posted (or posted before, for a repeat) and the account after."""

    entry: Entry
    account: PointAccount
    repeated: bool = False


@dataclass(frozen=True)
class Spend:
    customer_id: str
    points: int
    purpose: str
    reference: str
    key: str


Change = Callable[[Tx, "OpenAccount"], Awaitable[Entry]]


class PointsService:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.db = uow.db

    # -------------------------------------------------------------------------- rules

    async def set_rule(self, tenant: str, rule: EarningRule, *, changed_by: str) -> None:
        await SchemeStore(self.db).put(tenant, rule, changed_by=changed_by)

    async def rule(self, tenant: str) -> EarningRule:
        return await SchemeStore(self.db).get(tenant, EarningRule) or EarningRule()

    # -------------------------------------------------------------------------- reads

    async def account(self, tenant: str, customer_id: str) -> PointAccount:
        """As it stands now: an expiry the sweep has not reached yet is already applied."""
        stored = await AccountStore(self.db).get(tenant, customer_id)
        rule = await self.rule(tenant)
        posted, _ = ledger.mature(stored, utcnow(), rule.remind_days_ahead)
        return posted.account

    async def entries(
        self, tenant: str, customer_id: str, page: PageRequest
    ) -> tuple[list[Entry], str | None]:
        return await EntryStore(self.db).page(tenant, customer_id, page)

    # ------------------------------------------------------------------------ changes

    async def adjust(
        self, tenant: str, customer_id: str, points: int, *, reason: str, operator: str, key: str
    ) -> Posting:
        """Up: a new lot with the rule's validity. Down: first-expiring-first, never below
        zero (an adjustment is not a reversal)."""
        source = f"request:{key}"

        async def change(tx: Tx, opened: OpenAccount) -> Entry:
            cause = Cause(source=source, at=opened.now, reason=reason, operator=operator)
            if points > 0:
                expires_at = opened.rule.expires_at(opened.now)
                posted = ledger.credit(
                    opened.account, points, cause, expires_at=expires_at, kind=EntryKind.ADJUSTED
                )
            else:
                posted = ledger.debit(opened.account, -points, cause, kind=EntryKind.ADJUSTED)
            entry = opened.post(posted)[0]
            opened.events.append(
                PointsAdjusted(
                    customer_id=customer_id,
                    points=points,
                    reason=reason,
                    operator=operator,
                    balance=opened.account.balance,
                    adjusted_at=opened.now,
                )
            )
            return entry

        return await self._post(tenant, customer_id, source, change)

    async def spend(self, tenant: str, spend: Spend) -> Posting:
        """Redeem points for goods (or anything a caller names): first-expiring-first,
        refused beyond the balance."""
        source = f"request:{spend.key}"

        async def change(tx: Tx, opened: OpenAccount) -> Entry:
            return spend_points(opened, spend, source)

        return await self._post(tenant, spend.customer_id, source, change)

    async def pay(
        self,
        tenant: str,
        customer_id: str,
        *,
        order_id: str,
        order_amount: int,
        points: int,
        key: str,
    ) -> Posting:
        """Pay part of an order with points, within the rule's cap (a share of the order
        and a number of points). One payment per order: the order id is the source."""
        source = f"payment:{order_id}"

        async def change(tx: Tx, opened: OpenAccount) -> Entry:
            check_payment_cap(opened.rule, order_amount, points)
            spend = Spend(customer_id, points, "payment", order_id, key)
            return spend_points(opened, spend, source)

        return await self._post(tenant, customer_id, source, change, points=points)

    async def refund_payment(self, tenant: str, customer_id: str, order_id: str) -> Posting:
        """The order paid with points was cancelled or refunded: the points go back into
        the lots they came from, with their expiry (a linked `restored` entry)."""
        source = f"payment:{order_id}:refunded"

        async def change(tx: Tx, opened: OpenAccount) -> Entry:
            paid = await EntryStore(tx.db).by_source(
                tenant, f"payment:{order_id}", session=tx.session
            )
            if paid is None or paid.customer_id != customer_id:
                raise NotFound(f"no points payment for order {order_id}", code="payment_not_found")
            cause = Cause(
                source=source,
                at=opened.now,
                reason=f"payment refunded:{order_id}",
                order_id=order_id,
                linked_entry_id=paid.entry_id,
            )
            entry = opened.post(ledger.restore(opened.account, paid, cause))[0]
            opened.events.append(
                PointsRestored(
                    customer_id=customer_id,
                    points=entry.points,
                    reference=order_id,
                    reason="payment_refunded",
                    balance=opened.account.balance,
                    restored_at=opened.now,
                )
            )
            return entry

        return await self._post(tenant, customer_id, source, change)

    async def _post(
        self, tenant: str, customer_id: str, source: str, change: Change, *, points: int = 0
    ) -> Posting:
        """Post `change` once per `source`; a repeat answers with the first entry (and is
        refused if it asks for a different number of points)."""

        async def work(tx: Tx) -> Posting:
            earlier = await EntryStore(tx.db).by_source(tenant, source, session=tx.session)
            if earlier is not None:
                if earlier.customer_id != customer_id:
                    raise Conflict(
                        "this key was used for another customer", code="idempotency_key_reused"
                    )
                if points and abs(earlier.points) != points:
                    raise Conflict(
                        f"already posted with {abs(earlier.points)} points", code="already_posted"
                    )
                account = await AccountStore(tx.db).get(tenant, customer_id, session=tx.session)
                return Posting(earlier, account, repeated=True)
            opened = await open_account(tx, tenant, customer_id, utcnow())
            entry = await change(tx, opened)
            return Posting(entry, await commit(tx, opened))

        return await settle(self.uow, work)

    # ------------------------------------------------------------------------- sweep

    async def mature(self, tenant: str, customer_id: str, now: datetime | None = None) -> None:
        async def work(tx: Tx) -> None:
            opened = await open_account(tx, tenant, customer_id, now or utcnow())
            await commit(tx, opened)

        await settle(self.uow, work)

    async def mature_due(self, now: datetime | None = None, limit: int = 200) -> int:
        """One sweep round: accounts with a release, expiry or reminder due by `now`."""
        now = now or utcnow()
        due = await AccountStore(self.db).due(now, limit)
        for tenant, customer_id in due:
            await self.mature(tenant, customer_id, now)
        return len(due)


def spend_points(opened: OpenAccount, spend: Spend, source: str) -> Entry:
    cause = Cause(source=source, at=opened.now, reason=f"{spend.purpose}:{spend.reference}")
    entry = opened.post(ledger.debit(opened.account, spend.points, cause, kind=EntryKind.SPENT))[0]
    opened.events.append(
        PointsSpent(
            customer_id=spend.customer_id,
            points=spend.points,
            purpose=spend.purpose,
            reference=spend.reference,
            balance=opened.account.balance,
            spent_at=opened.now,
        )
    )
    return entry


def check_payment_cap(rule: EarningRule, order_amount: int, points: int) -> None:
    value = points * rule.point_value
    share_cap = order_amount * rule.max_payment_share // 100
    if value > share_cap:
        raise DomainError(
            f"points worth {value} exceed {rule.max_payment_share}% of the order ({share_cap})",
            code="points_payment_cap",
            max_points=share_cap // rule.point_value,
        )
    if rule.max_payment_points is not None and points > rule.max_payment_points:
        raise DomainError(
            f"at most {rule.max_payment_points} points may pay for one order",
            code="points_payment_cap",
            max_points=rule.max_payment_points,
        )
