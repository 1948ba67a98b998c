"""Coupon event handlers: contract event -> use case."""

from servicekit.consumer import Subscription
from services.coupon.events.order_gmv import with_gmv  # monitoring-and-alerts part
from services.coupon.events.orders import order_subscription
from services.coupon.events.partner_usage import partner_usage_subscription
from services.coupon.settings import CouponSettings


def subscriptions(settings: CouponSettings) -> list[Subscription]:
    return [
        with_gmv(order_subscription(settings), settings),  # monitoring: GMV after redemption
        partner_usage_subscription(),  # codes-and-partners part
    ]
