"""Reach event handlers: contract event -> use case. One consumer group per source topic."""

from datetime import timedelta

from servicekit.consumer import Subscription
from services.reach.events import customers, others
from services.reach.settings import ReachSettings


def subscriptions(settings: ReachSettings) -> list[Subscription]:
    window = timedelta(days=settings.attribution_window_days)
    every = [customers.subscription(window), others.TAGGING, others.COUPON, others.LOYALTY]
    wanted = settings.consumer_groups
    return [s for s in every if wanted is None or s.group_id in wanted]
