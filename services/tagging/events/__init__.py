"""Tagging event handlers: contract event -> read model update."""

from services.tagging.events.customers import SUBSCRIPTIONS

__all__ = ["SUBSCRIPTIONS"]
