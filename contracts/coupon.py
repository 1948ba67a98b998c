"""Events the coupon service publishes. Coupon events are keyed by the customer who holds the
coupon (`customer_id`), so one customer's wallet changes stay in order; budget and campaign
events are keyed by the budget or campaign they are about."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from contracts.events import Event
from contracts.topics import Topic


class CouponEvent(Event):
    topic: ClassVar[Topic] = Topic.COUPON


class CampaignApproved(CouponEvent):
    """Sent when a campaign is approved: its maximum subsidy is reserved and its batches exist."""

    type: ClassVar[str] = "coupon.campaign_approved.v1"
    subject_field: ClassVar[str] = "campaign_id"

    campaign_id: str
    budget_id: str
    reserved: int
    batch_ids: list[str]
    approved_by: str
    approved_at: datetime


class CampaignEnded(CouponEvent):
    """Sent when a campaign ends: claiming stops and the unused reservation is released."""

    type: ClassVar[str] = "coupon.campaign_ended.v1"
    subject_field: ClassVar[str] = "campaign_id"

    campaign_id: str
    budget_id: str
    released: int
    ended_by: str
    ended_at: datetime


class BudgetAlertRaised(CouponEvent):
    """Sent when a budget's committed share crosses one of its alert thresholds (预算预警)."""

    type: ClassVar[str] = "coupon.budget_alert_raised.v1"
    subject_field: ClassVar[str] = "budget_id"

    budget_id: str
    threshold_percent: int
    committed: int
    amount: int
    raised_at: datetime


class CouponClaimed(CouponEvent):
    """Sent when a coupon enters a customer's wallet (claimed, granted or returned-for-order)."""

    type: ClassVar[str] = "coupon.claimed.v1"

    coupon_id: str
    batch_id: str
    campaign_id: str
    customer_id: str
    channel: str
    reference: str | None = None
    face_value: int
    valid_from: datetime
    valid_until: datetime
    claimed_at: datetime


class CouponRedeemed(CouponEvent):
    """Sent when a locked coupon is used by a paid order; `discount` is charged to the budget."""

    type: ClassVar[str] = "coupon.redeemed.v1"

    coupon_id: str
    batch_id: str
    campaign_id: str
    customer_id: str
    order_id: str
    discount: int
    redeemed_at: datetime


class CouponRestored(CouponEvent):
    """Sent when a used coupon goes back to the wallet after its order was refunded."""

    type: ClassVar[str] = "coupon.restored.v1"

    coupon_id: str
    customer_id: str
    order_id: str
    discount: int
    restored_at: datetime


class CouponExpiryNoticed(CouponEvent):
    """Sent once per coupon when it is about to expire unused (reach reminds the customer)."""

    type: ClassVar[str] = "coupon.expiry_noticed.v1"

    coupon_id: str
    batch_id: str
    campaign_id: str
    customer_id: str
    face_value: int
    valid_until: datetime
    noticed_at: datetime


class AlertEvent(CouponEvent):
    """An ops alert (预警) of the coupon service, keyed by the alert so its changes stay in order.

    `kind` is stock, budget or efficiency; `subject_kind`/`subject_id` name what it is about
    (a batch, a budget, a merchant or product); `owner` is the team that owns the budget."""

    subject_field: ClassVar[str] = "alert_id"

    alert_id: str
    kind: str
    severity: str
    subject_kind: str
    subject_id: str
    budget_id: str | None = None
    owner: str | None = None
    title: str
    detail: str
    measures: dict[str, float] = {}
    at: datetime


class AlertRaised(AlertEvent):
    """Sent when a condition first crosses its alert line: one alert per open condition."""

    type: ClassVar[str] = "coupon.alert_raised.v1"


class AlertUpdated(AlertEvent):
    """Sent when an open alert's measures change (it is not raised again)."""

    type: ClassVar[str] = "coupon.alert_updated.v1"


class AlertAcknowledged(AlertEvent):
    """Sent when someone from ops acknowledges an open alert."""

    type: ClassVar[str] = "coupon.alert_acknowledged.v1"

    acknowledged_by: str


class AlertResolved(AlertEvent):
    """Sent when an alert's condition no longer holds (or ops resolve it by hand)."""

    type: ClassVar[str] = "coupon.alert_resolved.v1"

    resolved_by: str


class CompensationHeld(CouponEvent):
    """Sent when a compensation request goes over a review threshold and waits for a reviewer."""

    type: ClassVar[str] = "coupon.compensation_held.v1"

    compensation_id: str
    customer_id: str
    order_id: str | None = None
    batch_id: str
    value: int
    thresholds: list[str]
    requested_by: str
    requested_at: datetime
