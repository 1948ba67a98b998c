"""Opening and saving a point account inside a transaction.

Every use case that touches an account first matures it (held points whose window closed
are released, expired lots leave, reminders fall due), so nothing is ever spent from an
expired lot even if the sweep has not run yet; then it applies its change, and `commit`
saves the account over the version read, appends the entries and emits the events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from contracts import Event
from contracts.loyalty import PointsExpired, PointsExpiryReminded, PointsReleased
from servicekit.unit_of_work import Tx
from services.loyalty.domain import ledger
from services.loyalty.domain.earning import EarningRule
from services.loyalty.domain.ledger import EntryKind, PointAccount, Posted
from services.loyalty.store.points import AccountStore, EntryStore
from services.loyalty.store.schemes import SchemeStore


@dataclass
class OpenAccount:
    """An account being changed in one transaction: what it is now, and what was written."""

    tenant: str
    rule: EarningRule
    account: PointAccount
    now: datetime
    entries: list[ledger.Entry] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def post(self, posted: Posted) -> list[ledger.Entry]:
        self.account = posted.account
        self.entries.extend(posted.entries)
        return posted.entries


async def earning_rule(tx: Tx, tenant: str) -> EarningRule:
    """The tenant's rule; one point per yuan and a year's validity until one is set."""
    return await SchemeStore(tx.db).get(tenant, EarningRule, session=tx.session) or EarningRule()


async def open_account(tx: Tx, tenant: str, customer_id: str, now: datetime) -> OpenAccount:
    rule = await earning_rule(tx, tenant)
    account = await AccountStore(tx.db).get(tenant, customer_id, session=tx.session)
    opened = OpenAccount(tenant, rule, account, now)
    posted, notices = ledger.mature(account, now, rule.remind_days_ahead)
    opened.post(posted)
    opened.events.extend(_maturing_events(opened, posted, notices))
    return opened


async def commit(tx: Tx, opened: OpenAccount) -> PointAccount:
    due = opened.account.next_due_at(opened.rule.remind_days_ahead)
    accounts = AccountStore(tx.db)
    saved = await accounts.put(opened.tenant, opened.account, tx.session, next_due_at=due)
    await EntryStore(tx.db).add(opened.tenant, opened.entries, tx.session)
    if opened.events:
        await tx.emit(*opened.events, tenant=opened.tenant)
    return saved


def _maturing_events(
    opened: OpenAccount, posted: Posted, notices: list[ledger.ExpiryNotice]
) -> list[Event]:
    customer_id = opened.account.customer_id
    balance = opened.account.balance
    events: list[Event] = []
    released = sum(e.points for e in posted.entries if e.kind == EntryKind.RELEASED)
    if released:
        events.append(
            PointsReleased(
                customer_id=customer_id, points=released, balance=balance, released_at=opened.now
            )
        )
    expired = -sum(e.points for e in posted.entries if e.kind == EntryKind.EXPIRED)
    if expired:
        events.append(
            PointsExpired(
                customer_id=customer_id, points=expired, balance=balance, expired_at=opened.now
            )
        )
    events.extend(
        PointsExpiryReminded(
            customer_id=customer_id,
            points=n.points,
            expires_at=n.expires_at,
            reminded_at=opened.now,
        )
        for n in notices
    )
    return events
