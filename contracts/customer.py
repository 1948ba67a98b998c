"""Events the customer service publishes."""

from datetime import datetime
from typing import ClassVar

from pydantic import Field

from contracts.events import Event
from contracts.topics import Topic


class CustomerRegistered(Event):
    """Sent when a new customer profile is created (sign-up, store, import, partner)."""

    type: ClassVar[str] = "customer.registered.v1"
    topic: ClassVar[Topic] = Topic.CUSTOMER

    customer_id: str
    display_name: str = Field(max_length=100)
    source_channel: str
    lifecycle_stage: str
    registered_at: datetime
