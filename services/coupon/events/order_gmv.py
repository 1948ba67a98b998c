"""Monitoring's share of the order events: chained after the redemption handlers of the
"coupon.orders" group, in the same transaction (so the order's coupon is already
confirmed when its GMV is recorded, and a redelivered event changes nothing twice).

Paid: the order's GMV goes to `order_gmv` (with the coupon it used, if any) and to the
per-merchant and per-product daily model; refunded or voided after payment: the refund
comes off both. The merchant is the order's `store_id` (orders without one count for their
products only); a product is its `sku`, compared within its `category`."""

from __future__ import annotations

from dataclasses import replace

from contracts import Envelope, Event
from contracts.customer import OrderCancelled, OrderPaid, OrderRefunded
from servicekit.consumer import Handler, Subscription
from servicekit.unit_of_work import Tx
from services.coupon.domain.coupons import CouponState
from services.coupon.service.policies import default_policy
from services.coupon.settings import CouponSettings
from services.coupon.store.campaigns import CampaignStore
from services.coupon.store.coupons import CouponStore
from services.coupon.store.policies import PolicyStore
from services.coupon.store.stats import GmvLine, OrderGmv, StatsStore


def gmv_handlers(settings: CouponSettings) -> dict[type[Event], Handler]:
    default = default_policy(settings)

    async def on_paid(tx: Tx, envelope: Envelope, event: OrderPaid) -> None:
        tenant = envelope.tenant
        # The day is the tenant's own (its policy's time zone), as its daily limits are.
        zone = (await PolicyStore(tx.db).get(tenant) or default).zone
        order = OrderGmv(
            order_id=event.order_id,
            customer_id=event.customer_id,
            amount=event.amount,
            merchant_id=event.store_id,
            paid_day=event.paid_at.astimezone(zone).date().isoformat(),
            lines=[GmvLine(line_id=ln.line_id, sku=ln.sku, category=ln.category,
                           amount=ln.amount) for ln in event.lines],
        )  # fmt: skip
        coupon = await CouponStore(tx.db).for_order(tenant, event.order_id, tx.session)
        if coupon and coupon.state == CouponState.USED and coupon.order_id == event.order_id:
            campaign = await CampaignStore(tx.db).get(tenant, coupon.campaign_id, tx.session)
            order = order.model_copy(
                update={
                    "coupon_id": coupon.id,
                    "batch_id": coupon.batch_id,
                    "campaign_id": coupon.campaign_id,
                    "budget_id": campaign.budget_id if campaign else None,
                    "discount": coupon.discount or 0,
                }
            )
        await StatsStore(tx.db).record_paid(tenant, order, tx.session)

    async def on_refunded(tx: Tx, envelope: Envelope, event: OrderRefunded) -> None:
        lines = {ln.line_id: ln.amount for ln in event.lines}
        await StatsStore(tx.db).record_refund(
            envelope.tenant, event.order_id, event.amount, lines, tx.session
        )

    async def on_cancelled(tx: Tx, envelope: Envelope, event: OrderCancelled) -> None:
        if event.was_paid:  # voided after payment: whatever is left comes off
            await StatsStore(tx.db).record_refund(
                envelope.tenant, event.order_id, None, None, tx.session
            )

    return {OrderPaid: on_paid, OrderRefunded: on_refunded, OrderCancelled: on_cancelled}


def with_gmv(subscription: Subscription, settings: CouponSettings) -> Subscription:
    """`subscription` with monitoring's handlers run after its own, per event type."""
    handlers = dict(subscription.handlers)
    for cls, extra in gmv_handlers(settings).items():
        first = handlers.get(cls)
        handlers[cls] = extra if first is None else _chain(first, extra)
    return replace(subscription, handlers=handlers)


def _chain(first: Handler, then: Handler) -> Handler:
    async def both(tx: Tx, envelope: Envelope, event: object) -> None:
        await first(tx, envelope, event)
        await then(tx, envelope, event)

    return both
