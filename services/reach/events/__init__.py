"""Reach event handlers: contract event -> use case."""

from servicekit.consumer import Subscription

SUBSCRIPTIONS: list[Subscription] = []
