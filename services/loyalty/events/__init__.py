"""Loyalty event handlers: contract event -> use case."""

from servicekit.consumer import Subscription
from services.loyalty.events import orders

SUBSCRIPTIONS: list[Subscription] = [*orders.SUBSCRIPTIONS]

__all__ = ["SUBSCRIPTIONS"]
