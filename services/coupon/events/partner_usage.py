"""Partners are told when a coupon they issued, or whose code they handed out, is used
(group "coupon.partner_webhooks"): the handler records a webhook delivery in the
transaction that records the event id, so a redelivered event is reported once. Only
`coupon.redeemed` is followed: claims are the flash-sale hot path and are not read here."""

from __future__ import annotations

from contracts import Envelope
from contracts.coupon import CouponRedeemed
from servicekit.consumer import Subscription
from servicekit.unit_of_work import Tx
from services.coupon.service.partner_webhooks import PARTNER_PREFIX, coupon_redeemed
from services.coupon.store.coupons import CouponStore
from services.coupon.store.partner_webhooks import DeliveryStore

GROUP = "coupon.partner_webhooks"


async def on_redeemed(tx: Tx, envelope: Envelope, event: CouponRedeemed) -> None:
    coupon = await CouponStore(tx.db).get(envelope.tenant, event.coupon_id, tx.session)
    if coupon is None or not coupon.channel.startswith(PARTNER_PREFIX):
        return
    delivery = coupon_redeemed(envelope.tenant, envelope.id, event, coupon)
    if delivery is not None:
        await DeliveryStore(tx.db).enqueue(delivery, tx.session)


def partner_usage_subscription() -> Subscription:
    return Subscription(GROUP, handlers={CouponRedeemed: on_redeemed})
