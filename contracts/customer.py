"""Events the customer service publishes. Every event is keyed by the customer it is about
(`customer_id`; for a merge, the survivor), so one customer's events stay in order.

Events never carry personal data in clear (mobile, email, address, ID numbers): readers that
need to reach a customer ask the customer service, which checks the caller's rights."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, Field

from contracts.events import Event
from contracts.topics import Topic


class CustomerEvent(Event):
    topic: ClassVar[Topic] = Topic.CUSTOMER


class CustomerRegistered(CustomerEvent):
    """Sent when a new customer profile is created (sign-up, store, import, partner)."""

    type: ClassVar[str] = "customer.registered.v1"

    customer_id: str
    display_name: str = Field(max_length=100)
    source_channel: str
    lifecycle_stage: str
    registered_at: datetime
    owner_id: str | None = None


class CustomerProfileChanged(CustomerEvent):
    """Sent when profile fields or custom field values change; names the fields, not values."""

    type: ClassVar[str] = "customer.profile_changed.v1"

    customer_id: str
    changed_fields: list[str]
    changed_by: str
    changed_at: datetime
    #: Non-personal attributes after the change (gender, birthday month, custom fields...),
    #: so rule engines need not call back.
    attributes: dict[str, str | int | float | bool | list[str] | None] = Field(default_factory=dict)


class LifecycleStageChanged(CustomerEvent):
    """Sent when a customer moves between lead, prospect, customer, at risk and churned."""

    type: ClassVar[str] = "customer.lifecycle_stage_changed.v1"

    customer_id: str
    from_stage: str
    to_stage: str
    reason: str
    changed_at: datetime


class OwnerChanged(CustomerEvent):
    """Sent when a customer's owner (the responsible advisor) changes, one by one or by handover."""

    type: ClassVar[str] = "customer.owner_changed.v1"

    customer_id: str
    from_owner: str | None
    to_owner: str | None
    reason: str
    changed_by: str
    changed_at: datetime


class ConsentGranted(CustomerEvent):
    """Sent when a customer grants consent for a channel and purpose."""

    type: ClassVar[str] = "customer.consent_granted.v1"

    customer_id: str
    channel: str
    purpose: str
    source: str
    granted_at: datetime


class ConsentWithdrawn(CustomerEvent):
    """Sent when a customer withdraws consent; outreach must stop at once."""

    type: ClassVar[str] = "customer.consent_withdrawn.v1"

    customer_id: str
    channel: str
    purpose: str
    source: str
    withdrawn_at: datetime


class CustomersMerged(CustomerEvent):
    """Sent when a duplicate is merged into a survivor; re-key everything of `merged_id`."""

    type: ClassVar[str] = "customer.merged.v1"
    subject_field: ClassVar[str] = "survivor_id"

    merge_id: str
    survivor_id: str
    merged_id: str
    merged_by: str
    merged_at: datetime


class CustomersUnmerged(CustomerEvent):
    """Sent when a merge is undone; `restored_id` exists again with what it brought."""

    type: ClassVar[str] = "customer.unmerged.v1"
    subject_field: ClassVar[str] = "survivor_id"

    merge_id: str
    survivor_id: str
    restored_id: str
    unmerged_by: str
    unmerged_at: datetime


class CustomerErased(CustomerEvent):
    """Sent when a customer is erased at their request: every service forgets them."""

    type: ClassVar[str] = "customer.erased.v1"

    customer_id: str
    erased_at: datetime


class BehaviourRecorded(CustomerEvent):
    """Sent for each behaviour event ingested (page view, product view, search, cart...)."""

    type: ClassVar[str] = "customer.behaviour_recorded.v1"

    customer_id: str
    behaviour_id: str
    kind: str
    occurred_at: datetime
    #: What was viewed or searched: product id, category, page, keyword, store id...
    target: dict[str, str] = Field(default_factory=dict)


class OrderLine(BaseModel):
    line_id: str
    sku: str
    category: str | None = None
    quantity: int
    #: What the customer paid for the line, in minor units (分).
    amount: int


class OrderPaid(CustomerEvent):
    """Sent when a commerce system reports an order paid."""

    type: ClassVar[str] = "customer.order_paid.v1"

    customer_id: str
    order_id: str
    amount: int
    currency: str
    lines: list[OrderLine]
    channel: str | None = None
    store_id: str | None = None
    coupon_ids: list[str] = Field(default_factory=list)
    first_order: bool
    paid_at: datetime


class RefundedLine(BaseModel):
    line_id: str
    quantity: int
    amount: int


class OrderRefunded(CustomerEvent):
    """Sent when (part of) a paid order is refunded; names the refunded lines."""

    type: ClassVar[str] = "customer.order_refunded.v1"

    customer_id: str
    order_id: str
    refund_id: str
    amount: int
    lines: list[RefundedLine]
    fully_refunded: bool
    refunded_at: datetime


class OrderCancelled(CustomerEvent):
    """Sent when an order is cancelled before it was paid, or voided after payment."""

    type: ClassVar[str] = "customer.order_cancelled.v1"

    customer_id: str
    order_id: str
    was_paid: bool
    cancelled_at: datetime


class PurchaseStatsChanged(CustomerEvent):
    """Sent when a customer's purchase statistics change (after each order event)."""

    type: ClassVar[str] = "customer.purchase_stats_changed.v1"

    customer_id: str
    order_count: int
    total_amount: int
    refunded_amount: int
    first_purchase_at: datetime | None
    last_purchase_at: datetime | None
    changed_at: datetime


class FollowUpReminderDue(CustomerEvent):
    """Sent when an advisor's follow-up reminder falls due (reach delivers it to them)."""

    type: ClassVar[str] = "customer.follow_up_reminder_triggered.v1"

    customer_id: str
    follow_up_id: str
    owner_id: str
    due_at: datetime
    note: str = Field(max_length=200)
