"""Events of tagging (segment joins and leaves), coupon (claimed, redeemed) and loyalty (tier
changes) that triggered rules listen to; one consumer group per source topic."""

from __future__ import annotations

from contracts import Envelope
from contracts.coupon import CouponClaimed, CouponRedeemed
from contracts.loyalty import TierChanged
from contracts.tagging import SegmentMemberJoined, SegmentMemberLeft
from servicekit.consumer import Subscription
from servicekit.unit_of_work import Tx
from services.reach.domain.rules import Trigger
from services.reach.service import triggers
from services.reach.store.messages import MessageStore


async def segment_joined(tx: Tx, envelope: Envelope, event: SegmentMemberJoined) -> None:
    await triggers.on_event(
        tx,
        envelope.tenant,
        Trigger.SEGMENT_JOINED,
        event_id=envelope.id,
        customer_id=event.customer_id,
        occurred_at=event.joined_at,
        facts={"segment_id": event.segment_id},
    )


async def segment_left(tx: Tx, envelope: Envelope, event: SegmentMemberLeft) -> None:
    await triggers.on_event(
        tx,
        envelope.tenant,
        Trigger.SEGMENT_LEFT,
        event_id=envelope.id,
        customer_id=event.customer_id,
        occurred_at=event.left_at,
        facts={"segment_id": event.segment_id},
    )


def _yuan(fen: int) -> str:
    return f"{fen // 100}" if fen % 100 == 0 else f"{fen / 100:.2f}"


async def coupon_claimed(tx: Tx, envelope: Envelope, event: CouponClaimed) -> None:
    facts = {
        "face_value": event.face_value,
        "channel": event.channel,
        "batch_id": event.batch_id,
        "campaign_id": event.campaign_id,
    }
    variables = {
        "coupon_amount": _yuan(event.face_value),
        "coupon_expiry": event.valid_until.strftime("%Y-%m-%d"),
    }
    common = {
        "event_id": envelope.id,
        "customer_id": event.customer_id,
        "facts": facts,
        "variables": variables,
        "coupon_id": event.coupon_id,
    }
    await triggers.on_event(
        tx, envelope.tenant, Trigger.COUPON_CLAIMED, occurred_at=event.claimed_at, **common
    )
    await triggers.on_event(
        tx,
        envelope.tenant,
        Trigger.COUPON_EXPIRING,
        occurred_at=event.claimed_at,
        expires_at=event.valid_until,
        **common,
    )


async def coupon_redeemed(tx: Tx, envelope: Envelope, event: CouponRedeemed) -> None:
    """A used coupon needs no expiry reminder: drop the drafts waiting for it."""
    await MessageStore(tx.db).cancel_for_coupon(envelope.tenant, event.coupon_id, tx.session)


async def tier_changed(tx: Tx, envelope: Envelope, event: TierChanged) -> None:
    if event.direction != "up":
        return
    await triggers.on_event(
        tx,
        envelope.tenant,
        Trigger.TIER_UPGRADED,
        event_id=envelope.id,
        customer_id=event.customer_id,
        occurred_at=event.changed_at,
        facts={"to_tier": event.to_tier, "from_tier": event.from_tier, "growth": event.growth},
        variables={"tier_name": event.to_tier or ""},
    )


TAGGING = Subscription(
    "reach.tagging", handlers={SegmentMemberJoined: segment_joined, SegmentMemberLeft: segment_left}
)
COUPON = Subscription(
    "reach.coupon", handlers={CouponClaimed: coupon_claimed, CouponRedeemed: coupon_redeemed}
)
LOYALTY = Subscription("reach.loyalty", handlers={TierChanged: tier_changed})
