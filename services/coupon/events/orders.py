"""The customer service's order events drive redemption (group "coupon.orders"):

- paid: the order's locked coupon is used (charged to the budget; a return coupon issues
  its follow-up), and the customer's paid-order count (new vs returning) moves;
- cancelled unpaid: the coupon is released; cancelled after payment (voided) or fully
  refunded: the coupon is given back if its batch allows and it is still valid; refunded
  in part: the refunded lines' share of the discount is given back (domain/refunds.py).
Each runs in the transaction that records the event id, so a redelivery changes nothing."""

from __future__ import annotations

from contracts import Envelope
from contracts.customer import OrderCancelled, OrderPaid, OrderRefunded
from servicekit.consumer import Subscription
from servicekit.unit_of_work import Tx
from services.coupon.domain.refunds import RefundLine
from services.coupon.service import merges, parts
from services.coupon.service.redemption import RedemptionService, Refund
from services.coupon.settings import CouponSettings
from services.coupon.store.customers import CustomerOrdersStore


def order_subscription(settings: CouponSettings) -> Subscription:
    def service(tx: Tx) -> RedemptionService:
        return parts.redemption_on(tx.db, None, settings)

    async def on_paid(tx: Tx, envelope: Envelope, event: OrderPaid) -> None:
        # A duplicate's order read after its merge counts for the survivor.
        customer = await merges.owner_of(tx, envelope.tenant, event.customer_id)
        await CustomerOrdersStore(tx.db).count_paid(
            envelope.tenant, customer, event.order_id, tx.session
        )
        await service(tx).confirm_in(tx, envelope.tenant, event.order_id)

    async def on_refunded(tx: Tx, envelope: Envelope, event: OrderRefunded) -> None:
        lines = (
            None
            if event.fully_refunded
            else [
                # The customer service validated the event; ids are those the lock named.
                RefundLine.model_construct(line_id=ln.line_id, quantity=ln.quantity)
                for ln in event.lines
                if ln.quantity > 0
            ]
        )
        refund = Refund(event.refund_id, lines)
        await service(tx).refund_in(tx, envelope.tenant, event.order_id, refund)

    async def on_cancelled(tx: Tx, envelope: Envelope, event: OrderCancelled) -> None:
        if event.was_paid:  # voided after payment: as a full refund
            await service(tx).refund_in(tx, envelope.tenant, event.order_id)
        else:
            await service(tx).release_in(tx, envelope.tenant, event.order_id)

    return Subscription(
        "coupon.orders",
        handlers={OrderPaid: on_paid, OrderRefunded: on_refunded, OrderCancelled: on_cancelled},
    )
