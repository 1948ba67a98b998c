"""Events the reach service publishes, keyed by the customer a message went to: what was
sent, its delivery receipts (delivered, failed, clicked), and the orders it converted."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from contracts.events import Event
from contracts.topics import Topic


class ReachEvent(Event):
    topic: ClassVar[Topic] = Topic.REACH


class MessageSent(ReachEvent):
    """Sent when a provider accepted a message for a customer (from a campaign, rule or API)."""

    type: ClassVar[str] = "reach.message_sent.v1"

    message_id: str
    customer_id: str
    channel: str
    purpose: str
    provider: str
    template_id: str
    template_version: int
    campaign_id: str | None = None
    rule_id: str | None = None
    variant: str | None = None
    sent_at: datetime


class MessageDelivered(ReachEvent):
    """Sent when a provider's receipt says the message reached the customer."""

    type: ClassVar[str] = "reach.message_delivered.v1"

    message_id: str
    customer_id: str
    channel: str
    campaign_id: str | None = None
    delivered_at: datetime


class MessageFailed(ReachEvent):
    """Sent when a provider refused a message or its receipt reports it undelivered."""

    type: ClassVar[str] = "reach.message_failed.v1"

    message_id: str
    customer_id: str
    channel: str
    campaign_id: str | None = None
    reason: str
    failed_at: datetime


class MessageClicked(ReachEvent):
    """Sent the first time a customer opens a message's tracked link."""

    type: ClassVar[str] = "reach.message_clicked.v1"

    message_id: str
    customer_id: str
    channel: str
    campaign_id: str | None = None
    clicked_at: datetime


class ConversionAttributed(ReachEvent):
    """Sent when a paid order is attributed to the last touch before it within the window."""

    type: ClassVar[str] = "reach.conversion_attributed.v1"

    order_id: str
    customer_id: str
    message_id: str
    campaign_id: str | None = None
    rule_id: str | None = None
    #: `holdout` when the customer was held out of the campaign (no message was sent).
    variant: str | None = None
    amount: int
    paid_at: datetime
