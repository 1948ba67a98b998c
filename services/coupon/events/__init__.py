"""Coupon event handlers: contract event -> use case."""

from servicekit.consumer import Subscription
from services.coupon.events.customers import customer_subscription
from services.coupon.events.order_gmv import with_gmv  # monitoring-and-alerts part
from services.coupon.events.orders import order_subscription
from services.coupon.events.partner_usage import partner_usage_subscription
from services.coupon.settings import CouponSettings


def subscriptions(settings: CouponSettings) -> list[Subscription]:
    every = [
        with_gmv(order_subscription(settings), settings),  # monitoring: GMV after redemption
        partner_usage_subscription(),  # codes-and-partners part
        customer_subscription(),  # merges move wallets
    ]
    wanted = settings.consumer_groups  # channels part (issue 7): only the groups asked for
    return [s for s in every if wanted is None or s.group_id in wanted]
