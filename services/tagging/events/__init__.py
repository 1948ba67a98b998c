"""Tagging event handlers: contract event -> read model update."""

from servicekit.consumer import Subscription
from services.tagging.events import customers, facts

#: Every consumer group of the service; a module adds its own on one line.
SUBSCRIPTIONS: list[Subscription] = [
    *customers.SUBSCRIPTIONS,
    *facts.SUBSCRIPTIONS,
]

__all__ = ["SUBSCRIPTIONS"]
