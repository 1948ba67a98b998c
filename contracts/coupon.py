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
