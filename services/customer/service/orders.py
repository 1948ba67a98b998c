"""Order use cases: a commerce system reports an order paid, refunded or cancelled; the
customer's purchase statistics move in the same transaction, and the events that follow
(`customer.order_*.v1`, `customer.purchase_stats_changed.v1`, and on a first order
`customer.lifecycle_stage_changed.v1`) are written with them.

Concurrency: every report reads and saves the customer's statistics document guarded by
its version, inside the transaction, so concurrent orders of one customer serialise on it
(a lost race runs the whole unit again) and the statistics are exactly the sum. The same
order reported many times at once inserts its document once: the others hit the unique
order id, run again, and answer as a repeat."""

from __future__ import annotations

from datetime import datetime

from contracts.customer import (
    OrderCancelled,
    OrderPaid,
    OrderRefunded,
    PurchaseStatsChanged,
    RefundedLine,
)
from contracts.customer import OrderLine as OrderLineData
from servicekit.clock import utcnow
from servicekit.errors import Conflict, NotFound
from servicekit.pagination import PageRequest
from servicekit.unit_of_work import Tx, UnitOfWork
from services.customer.domain import orders as rules
from services.customer.domain import purchase_stats as stats_rules
from services.customer.domain.orders import (
    CancelReport,
    Order,
    OrderStatus,
    PaidReport,
    RefundReport,
)
from services.customer.domain.purchase_stats import PurchaseStats, PurchaseSummary
from services.customer.service.lifecycle import promote_after_first_order
from services.customer.store.customers import CustomerStore
from services.customer.store.orders import OrderStore, PurchaseStatsStore
from services.customer.store.races import run_until_settled

#: An order as it now stands, and whether this report changed anything (False: a repeat).
Reported = tuple[Order, bool]


class OrderService:
    def __init__(
        self,
        uow: UnitOfWork,
        orders: OrderStore,
        stats: PurchaseStatsStore,
        customers: CustomerStore,
    ) -> None:
        self.uow = uow
        self.orders = orders
        self.stats = stats
        self.customers = customers

    # ------------------------------------------------------------------------ reports

    async def report_paid(self, tenant: str, report: PaidReport) -> Reported:
        now = utcnow()
        rules.check_paid(report, now=now)

        async def work(tx: Tx) -> Reported:
            existing = await self.orders.get(tenant, report.order_id, session=tx.session)
            if existing is not None:
                return rules.replay_paid(existing, report), False
            await self._require_active(tx, tenant, report.customer_id)
            return await self._pay(tx, tenant, report, now), True

        return await run_until_settled(self.uow, work)

    async def report_refund(self, tenant: str, order_id: str, report: RefundReport) -> Reported:
        now = utcnow()

        async def work(tx: Tx) -> Reported:
            order = await self._order(tenant, order_id, tx)
            if (earlier := rules.find_refund(order, report.refund_id)) is not None:
                return rules.replay_refund(order, earlier, report), False
            return await self._refund(tx, tenant, order, report, now), True

        return await run_until_settled(self.uow, work)

    async def report_cancel(self, tenant: str, order_id: str, report: CancelReport) -> Reported:
        now = utcnow()

        async def work(tx: Tx) -> Reported:
            order = await self.orders.get(tenant, order_id, session=tx.session)
            if order is None:
                return await self._cancel_unpaid(tx, tenant, order_id, report, now), True
            if order.status == OrderStatus.CANCELLED:
                return rules.replay_cancel(order, report), False
            return await self._void(tx, tenant, order, report, now), True

        return await run_until_settled(self.uow, work)

    # -------------------------------------------------------------------------- reads

    async def get(self, tenant: str, order_id: str) -> Order:
        return await self._order(tenant, order_id)

    async def page_for_customer(
        self, tenant: str, customer_id: str, page: PageRequest
    ) -> tuple[list[Order], str | None]:
        await self._require_known(tenant, customer_id)
        return await self.orders.page_for_customer(tenant, customer_id, page)

    async def purchase_stats(self, tenant: str, customer_id: str) -> PurchaseSummary:
        await self._require_known(tenant, customer_id)
        stats = await self.stats.get(tenant, customer_id) or stats_rules.empty(customer_id)
        return stats_rules.summarize(stats, now=utcnow())

    # ---------------------------------------------------------------------- the flows

    async def _pay(self, tx: Tx, tenant: str, report: PaidReport, now: datetime) -> Order:
        stats = await self._current_stats(tx, tenant, report.customer_id)
        first = stats_rules.is_first_order(stats)
        order = rules.paid(report, first_order=first, at=now)
        changed = stats_rules.after_paid(stats, order, at=now)  # may refuse: check first
        await self.orders.add(tenant, order, tx.session)
        saved = await self.stats.save(tenant, changed, tx.session)
        await tx.emit(_paid(order), _stats_changed(saved), tenant=tenant)
        if first:
            assert order.paid_at is not None
            await promote_after_first_order(tx, tenant, order.customer_id, at=order.paid_at)
        return order

    async def _refund(
        self, tx: Tx, tenant: str, order: Order, report: RefundReport, now: datetime
    ) -> Order:
        refunded = rules.refund(order, report, now=now)
        stats = await self._current_stats(tx, tenant, order.customer_id)
        saved_order = await self.orders.replace(tenant, refunded, tx.session)
        changed = stats_rules.after_refund(stats, report.amount, at=now)
        saved = await self.stats.save(tenant, changed, tx.session)
        await tx.emit(_refunded(saved_order, report), _stats_changed(saved), tenant=tenant)
        return saved_order

    async def _void(
        self, tx: Tx, tenant: str, order: Order, report: CancelReport, now: datetime
    ) -> Order:
        voided = await self.orders.replace(tenant, rules.cancel(order, report, now=now), tx.session)
        # Read after the write: the span is that of the orders still counted.
        span = await self.orders.purchase_span(tenant, order.customer_id, tx.session)
        stats = await self._current_stats(tx, tenant, order.customer_id)
        changed = stats_rules.after_void(stats, order, span=span, at=now)
        saved = await self.stats.save(tenant, changed, tx.session)
        await tx.emit(_cancelled(voided), _stats_changed(saved), tenant=tenant)
        return voided

    async def _cancel_unpaid(
        self, tx: Tx, tenant: str, order_id: str, report: CancelReport, now: datetime
    ) -> Order:
        """Statistics never counted it, so they do not move and no stats event follows."""
        order = rules.cancelled_unpaid(order_id, report, now=now, at=now)
        await self._require_active(tx, tenant, order.customer_id)
        await self.orders.add(tenant, order, tx.session)
        await tx.emit(_cancelled(order), tenant=tenant)
        return order

    # ------------------------------------------------------------------------ helpers

    async def _order(self, tenant: str, order_id: str, tx: Tx | None = None) -> Order:
        found = await self.orders.get(tenant, order_id, session=tx.session if tx else None)
        if found is None:
            raise NotFound(f"no order {order_id}", code="order_not_found")
        return found

    async def _current_stats(self, tx: Tx, tenant: str, customer_id: str) -> PurchaseStats:
        stored = await self.stats.get(tenant, customer_id, session=tx.session)
        return stored or stats_rules.empty(customer_id)

    async def _require_known(self, tenant: str, customer_id: str) -> None:
        if await self.customers.get(tenant, customer_id) is None:
            raise NotFound(f"no customer {customer_id}", code="customer_not_found")

    async def _require_active(self, tx: Tx, tenant: str, customer_id: str) -> None:
        """Orders of a merged or erased customer belong to the survivor, or to no one."""
        customer = await self.customers.get(tenant, customer_id, session=tx.session)
        if customer is None:
            raise NotFound(f"no customer {customer_id}", code="customer_not_found")
        if customer.status != "active":
            raise Conflict(f"the customer is {customer.status}", code="customer_inactive")


# -------------------------------------------------------------------------- events


def _paid(order: Order) -> OrderPaid:
    assert order.paid_at is not None
    return OrderPaid(
        customer_id=order.customer_id,
        order_id=order.order_id,
        amount=order.amount,
        currency=order.currency,
        lines=[
            OrderLineData(**line.model_dump(include=set(OrderLineData.model_fields)))
            for line in order.lines
        ],
        channel=order.channel,
        store_id=order.store_id,
        coupon_ids=order.coupon_ids,
        first_order=order.first_order,
        paid_at=order.paid_at,
    )


def _refunded(order: Order, report: RefundReport) -> OrderRefunded:
    return OrderRefunded(
        customer_id=order.customer_id,
        order_id=order.order_id,
        refund_id=report.refund_id,
        amount=report.amount,
        lines=[RefundedLine(**line.model_dump()) for line in report.lines],
        fully_refunded=order.fully_refunded,
        refunded_at=report.refunded_at,
    )


def _cancelled(order: Order) -> OrderCancelled:
    assert order.cancelled_at is not None
    return OrderCancelled(
        customer_id=order.customer_id,
        order_id=order.order_id,
        was_paid=order.was_paid,
        cancelled_at=order.cancelled_at,
    )


def _stats_changed(stats: PurchaseStats) -> PurchaseStatsChanged:
    assert stats.changed_at is not None
    return PurchaseStatsChanged(
        customer_id=stats.customer_id,
        order_count=stats.order_count,
        total_amount=stats.total_paid,
        refunded_amount=stats.total_refunded,
        first_purchase_at=stats.first_purchase_at,
        last_purchase_at=stats.last_purchase_at,
        changed_at=stats.changed_at,
    )
