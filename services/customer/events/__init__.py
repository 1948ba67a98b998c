"""Customer event handlers: contract event -> use case. The customer service consumes
nothing yet; commerce order events arrive here with the orders capability."""

from servicekit.consumer import Subscription

SUBSCRIPTIONS: list[Subscription] = []
