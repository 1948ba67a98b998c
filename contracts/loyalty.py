"""Events the loyalty service publishes, keyed by the customer they are about. Points and
money are integers (points; minor units 分); balances are as they stand after the change."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from contracts.events import Event
from contracts.topics import Topic


class LoyaltyEvent(Event):
    topic: ClassVar[Topic] = Topic.LOYALTY


class PointsEarned(LoyaltyEvent):
    """Sent when a paid order earns points: credited, or `held` until `available_at`."""

    type: ClassVar[str] = "loyalty.points_earned.v1"

    customer_id: str
    points: int
    source: str
    order_id: str | None = None
    held: bool = False
    available_at: datetime | None = None
    expires_at: datetime | None = None
    balance: int
    pending: int
    earned_at: datetime


class PointsReleased(LoyaltyEvent):
    """Sent when held points become spendable at the end of their order's return window."""

    type: ClassVar[str] = "loyalty.points_released.v1"

    customer_id: str
    points: int
    balance: int
    released_at: datetime


class PointsSpent(LoyaltyEvent):
    """Sent when points are spent: redeemed for goods, paid with, exchanged for a coupon."""

    type: ClassVar[str] = "loyalty.points_spent.v1"

    customer_id: str
    points: int
    purpose: str
    reference: str
    balance: int
    spent_at: datetime


class PointsRestored(LoyaltyEvent):
    """Sent when a spend is undone (a coupon exchange the coupon service refused)."""

    type: ClassVar[str] = "loyalty.points_restored.v1"

    customer_id: str
    points: int
    reference: str
    reason: str
    balance: int
    restored_at: datetime


class PointsReversed(LoyaltyEvent):
    """Sent when an order's points are taken back (refund or void); `debt` if already spent."""

    type: ClassVar[str] = "loyalty.points_reversed.v1"

    customer_id: str
    points: int
    order_id: str
    refund_id: str | None = None
    line_ids: list[str]
    debt: int
    balance: int
    pending: int
    reversed_at: datetime


class PointsAdjusted(LoyaltyEvent):
    """Sent when an operator adjusts a customer's points by hand, with the reason."""

    type: ClassVar[str] = "loyalty.points_adjusted.v1"

    customer_id: str
    points: int
    reason: str
    operator: str
    balance: int
    adjusted_at: datetime


class PointsTransferred(LoyaltyEvent):
    """Sent for each account a customer merge (or unmerge) moved points out of or into."""

    type: ClassVar[str] = "loyalty.points_transferred.v1"

    customer_id: str
    counterpart_id: str
    merge_id: str
    points: int
    pending: int
    balance: int
    transferred_at: datetime


class PointsExpired(LoyaltyEvent):
    """Sent when lots reach their expiry with points left; those points are gone."""

    type: ClassVar[str] = "loyalty.points_expired.v1"

    customer_id: str
    points: int
    balance: int
    expired_at: datetime


class PointsExpiryReminded(LoyaltyEvent):
    """Sent ahead of expiry so reach can remind the customer: `points` expire at `expires_at`."""

    type: ClassVar[str] = "loyalty.points_expiry_reminded.v1"

    customer_id: str
    points: int
    expires_at: datetime
    reminded_at: datetime


class TierChanged(LoyaltyEvent):
    """Sent when a customer's tier changes: up at a threshold, down at an evaluation."""

    type: ClassVar[str] = "loyalty.tier_changed.v1"

    customer_id: str
    from_tier: str | None
    to_tier: str | None
    direction: str
    reason: str
    growth: int
    changed_at: datetime


class TierDowngradeWarned(LoyaltyEvent):
    """Sent before an evaluation that would downgrade: `needed` more growth keeps the tier."""

    type: ClassVar[str] = "loyalty.tier_downgrade_warned.v1"

    customer_id: str
    tier_id: str
    growth: int
    needed: int
    evaluate_at: datetime


class BenefitUsed(LoyaltyEvent):
    """Sent when a benefit is written off (used); `remaining` uses are left of the grant."""

    type: ClassVar[str] = "loyalty.benefit_used.v1"

    customer_id: str
    grant_id: str
    benefit_id: str
    write_off_id: str
    uses: int
    remaining: int | None
    used_at: datetime


class BenefitUseReversed(LoyaltyEvent):
    """Sent when an operator reverses a write-off; its uses are back on the grant."""

    type: ClassVar[str] = "loyalty.benefit_use_reversed.v1"

    customer_id: str
    grant_id: str
    write_off_id: str
    uses: int
    operator: str
    reversed_at: datetime


class BenefitCardPurchased(LoyaltyEvent):
    """Sent when a customer gets a benefit card (bought or free); it holds until `expires_at`."""

    type: ClassVar[str] = "loyalty.benefit_card_purchased.v1"

    customer_id: str
    card_id: str
    holding_id: str
    price: int
    expires_at: datetime
    purchased_at: datetime


class BenefitCardRenewed(LoyaltyEvent):
    """Sent when a benefit card is renewed for another period, now until `expires_at`."""

    type: ClassVar[str] = "loyalty.benefit_card_renewed.v1"

    customer_id: str
    card_id: str
    holding_id: str
    price: int
    expires_at: datetime
    renewed_at: datetime


class BenefitCardExpired(LoyaltyEvent):
    """Sent when a benefit card's period ends unrenewed; its benefits can no longer be used."""

    type: ClassVar[str] = "loyalty.benefit_card_expired.v1"

    customer_id: str
    card_id: str
    holding_id: str
    expired_at: datetime


class StoredValueChanged(LoyaltyEvent):
    """Sent for every stored-value movement (top-up, spend, refund, freeze...), with balances."""

    type: ClassVar[str] = "loyalty.stored_value_changed.v1"

    customer_id: str
    movement: str
    reference: str
    principal_change: int
    bonus_change: int
    principal: int
    bonus: int
    frozen: bool
    changed_at: datetime
