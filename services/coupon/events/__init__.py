"""Coupon event handlers: contract event -> use case."""

from servicekit.consumer import Subscription
from services.coupon.events.orders import order_subscription
from services.coupon.events.partner_usage import partner_usage_subscription
from services.coupon.settings import CouponSettings


def subscriptions(settings: CouponSettings) -> list[Subscription]:
    return [
        order_subscription(settings),
        partner_usage_subscription(),  # codes-and-partners part
    ]
