"""The points-for-coupon saga (see domain/exchanges.py): debit, ask the coupon service,
then record the coupon or restore the points. Each step is its own transaction; the
call to the coupon service happens between them, never inside one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from contracts.loyalty import PointsRestored
from servicekit.clock import utcnow
from servicekit.errors import Conflict, NotFound
from servicekit.unit_of_work import Tx, UnitOfWork
from services.loyalty.clients.coupons import CouponClient, CouponRefused, CouponUnavailable
from services.loyalty.domain import exchanges as saga
from services.loyalty.domain import ledger
from services.loyalty.domain.exchanges import Exchange, ExchangeState
from services.loyalty.domain.ledger import Cause
from services.loyalty.service.accounts import commit, open_account
from services.loyalty.service.points import Spend, spend_points
from services.loyalty.store.exchanges import ExchangeStore
from services.loyalty.store.points import EntryStore
from services.loyalty.store.races import settle

#: An exchange left without an answer is asked again by the sweep after this long.
RETRY_AFTER = timedelta(seconds=30)
Step = Callable[[Exchange, datetime], Exchange]


class ExchangeService:
    def __init__(self, uow: UnitOfWork, coupons: CouponClient) -> None:
        self.uow = uow
        self.coupons = coupons
        self.exchanges = ExchangeStore(uow.db)

    async def exchange(
        self, tenant: str, customer_id: str, *, batch_id: str, points: int, key: str
    ) -> Exchange:
        """Run the saga for this request; the same key again resumes or answers it."""
        exchange = await self._debit(tenant, customer_id, batch_id, points, key)
        if exchange.state != ExchangeState.DEBITED:
            return exchange
        return await self._ask(tenant, exchange)

    async def get(self, tenant: str, key: str) -> Exchange:
        """By the request's key."""
        found = await self.exchanges.load(tenant, key)
        if found is None:
            raise NotFound("no exchange under this key", code="exchange_not_found")
        return found

    async def by_id(self, tenant: str, customer_id: str, exchange_id: str) -> Exchange:
        found = await self.exchanges.by_id(tenant, exchange_id)
        if found is None or found.customer_id != customer_id:
            raise NotFound(f"no exchange {exchange_id}", code="exchange_not_found")
        return found

    async def resume_unsettled(self, now: datetime | None = None, limit: int = 100) -> int:
        """One sweep round: exchanges still without an answer are asked again."""
        before = (now or utcnow()) - RETRY_AFTER
        waiting = await self.exchanges.unsettled(before, limit)
        for tenant, key in waiting:
            exchange = await self.exchanges.load(tenant, key)
            if exchange is not None and exchange.state == ExchangeState.DEBITED:
                await self._ask(tenant, exchange)
        return len(waiting)

    # --------------------------------------------------------------------- the steps

    async def _debit(
        self, tenant: str, customer_id: str, batch_id: str, points: int, key: str
    ) -> Exchange:
        async def work(tx: Tx) -> Exchange:
            earlier = await self.exchanges.load(tenant, key, session=tx.session)
            if earlier is not None:
                return _same_request(earlier, customer_id, batch_id, points)
            opened = await open_account(tx, tenant, customer_id, utcnow())
            spend = Spend(customer_id, points, "coupon_exchange", batch_id, key)
            entry = spend_points(opened, spend, f"exchange:{key}")
            started = saga.started(customer_id, batch_id, points, key, entry.entry_id, opened.now)
            await commit(tx, opened)
            return await self.exchanges.put(tenant, started, tx.session)

        return await settle(self.uow, work)

    async def _ask(self, tenant: str, exchange: Exchange) -> Exchange:
        try:
            coupon = await self.coupons.grant(
                tenant,
                batch_id=exchange.batch_id,
                customer_id=exchange.customer_id,
                reference=exchange.exchange_id,
            )
        except CouponRefused as refusal:
            return await self._restore(tenant, exchange, refusal)
        except CouponUnavailable:
            return await self._settle(tenant, exchange, lambda e, at: saga.unanswered(e, at))
        return await self._settle(
            tenant, exchange, lambda e, at: saga.granted(e, coupon.coupon_id, at)
        )

    async def _settle(self, tenant: str, exchange: Exchange, step: Step) -> Exchange:
        async def work(tx: Tx) -> Exchange:
            current = await self.exchanges.load(tenant, exchange.key, session=tx.session)
            assert current is not None
            if current.state != ExchangeState.DEBITED:
                return current  # another attempt settled it first
            return await self.exchanges.put(tenant, step(current, utcnow()), tx.session)

        return await settle(self.uow, work)

    async def _restore(self, tenant: str, exchange: Exchange, refusal: CouponRefused) -> Exchange:
        async def work(tx: Tx) -> Exchange:
            current = await self.exchanges.load(tenant, exchange.key, session=tx.session)
            assert current is not None
            if current.state != ExchangeState.DEBITED:
                return current
            spent = await EntryStore(tx.db).by_source(tenant, current.source, session=tx.session)
            assert spent is not None, "an exchange's debit is written with it"
            opened = await open_account(tx, tenant, current.customer_id, utcnow())
            cause = Cause(
                source=f"{current.source}:restored",
                at=opened.now,
                reason=f"coupon refused: {refusal.code}",
                linked_entry_id=spent.entry_id,
            )
            restored = opened.post(ledger.restore(opened.account, spent, cause))[0]
            opened.events.append(
                PointsRestored(
                    customer_id=current.customer_id,
                    points=current.points,
                    reference=current.exchange_id,
                    reason=refusal.code,
                    balance=opened.account.balance,
                    restored_at=opened.now,
                )
            )
            await commit(tx, opened)
            done = saga.refused(current, refusal.code, restored.entry_id, opened.now)
            return await self.exchanges.put(tenant, done, tx.session)

        return await settle(self.uow, work)


def _same_request(earlier: Exchange, customer_id: str, batch_id: str, points: int) -> Exchange:
    if (earlier.customer_id, earlier.batch_id, earlier.points) != (customer_id, batch_id, points):
        raise Conflict("this key was used for another exchange", code="idempotency_key_reused")
    return earlier
