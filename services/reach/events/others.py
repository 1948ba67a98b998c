"""Events of tagging (segment joins and leaves), coupon (claimed, about to expire, redeemed;
ops alerts for the owning team) and loyalty (tier changes) that reach acts on; one consumer
group per source topic."""

from __future__ import annotations

from datetime import datetime

from contracts import Envelope
from contracts.coupon import AlertRaised, CouponClaimed, CouponExpiryNoticed, CouponRedeemed
from contracts.loyalty import TierChanged
from contracts.tagging import SegmentMemberJoined, SegmentMemberLeft
from servicekit.consumer import Subscription
from servicekit.unit_of_work import Tx
from services.reach.domain.rules import Trigger
from services.reach.domain.staff import Alert
from services.reach.service import staff_notices, triggers
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


def _coupon_variables(face_value: int, valid_until: datetime) -> dict[str, str]:
    return {"coupon_amount": _yuan(face_value), "coupon_expiry": valid_until.strftime("%Y-%m-%d")}


async def coupon_claimed(tx: Tx, envelope: Envelope, event: CouponClaimed) -> None:
    await triggers.on_event(
        tx,
        envelope.tenant,
        Trigger.COUPON_CLAIMED,
        event_id=envelope.id,
        customer_id=event.customer_id,
        occurred_at=event.claimed_at,
        facts={
            "face_value": event.face_value,
            "channel": event.channel,
            "batch_id": event.batch_id,
            "campaign_id": event.campaign_id,
        },
        variables=_coupon_variables(event.face_value, event.valid_until),
        coupon_id=event.coupon_id,
    )


async def coupon_expiry_noticed(tx: Tx, envelope: Envelope, event: CouponExpiryNoticed) -> None:
    """The coupon service says the coupon ends soon and is unused (it announces each coupon
    once). The message's key names the coupon, not the event: a repeated announcement of
    the same coupon still sends one reminder per rule."""
    await triggers.on_event(
        tx,
        envelope.tenant,
        Trigger.COUPON_EXPIRING,
        event_id=f"expiring:{event.coupon_id}",
        customer_id=event.customer_id,
        occurred_at=event.noticed_at,
        facts={
            "face_value": event.face_value,
            "batch_id": event.batch_id,
            "campaign_id": event.campaign_id,
        },
        variables=_coupon_variables(event.face_value, event.valid_until),
        expires_at=event.valid_until,
        coupon_id=event.coupon_id,
    )


async def coupon_redeemed(tx: Tx, envelope: Envelope, event: CouponRedeemed) -> None:
    """A used coupon needs no expiry reminder: drop the drafts waiting for it."""
    await MessageStore(tx.db).cancel_for_coupon(envelope.tenant, event.coupon_id, tx.session)


async def alert_raised(tx: Tx, envelope: Envelope, event: AlertRaised) -> None:
    """An ops alert of the coupon service: the owning team's staff are told."""
    alert = Alert.model_validate(event.model_dump())
    await staff_notices.queue_in(tx, envelope.tenant, alert)


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
    "reach.coupon",
    handlers={
        CouponClaimed: coupon_claimed,
        CouponExpiryNoticed: coupon_expiry_noticed,
        CouponRedeemed: coupon_redeemed,
        AlertRaised: alert_raised,
    },
)
LOYALTY = Subscription("reach.loyalty", handlers={TierChanged: tier_changed})
