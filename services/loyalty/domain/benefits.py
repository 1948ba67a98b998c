"""Benefits (权益), benefit cards (权益卡) and write-offs (权益核销).

A benefit is defined once per tenant (a discount rate, free shipping, a points multiplier,
a birthday gift, a service privilege, or custom). A customer holds it by tier (the tier
scheme lists each tier's benefits), through a card, or by a direct grant. A card bundles
benefits for a validity period: buying it makes one grant per bundled benefit until the
card expires; renewing adds a period and the bundled uses again.

A grant with a number of uses (3 free car washes) is written off one use at a time; a
write-off never takes a grant below zero uses, also under concurrent calls (the store
checks the count in the same update that lowers it), and an operator may reverse one,
which gives its uses back. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from servicekit.errors import Conflict
from services.loyalty.domain.values import MAX_MONEY, ExternalId, Name, new_id


class BenefitKind(StrEnum):
    DISCOUNT = "discount"  # value: percent paid, e.g. 95
    FREE_SHIPPING = "free_shipping"
    POINTS_MULTIPLIER = "points_multiplier"  # value: percent, e.g. 150
    BIRTHDAY_GIFT = "birthday_gift"
    SERVICE = "service"  # a service privilege: priority line, free alterations
    CUSTOM = "custom"


class Definition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Benefit(Definition):
    benefit_id: ExternalId
    name: Name
    kind: BenefitKind
    value: int | None = Field(None, ge=0, le=10_000)
    description: str | None = Field(None, max_length=500)


class CardBenefit(Definition):
    benefit_id: ExternalId
    #: Uses per period; None: unlimited while the card is valid.
    uses: int | None = Field(None, ge=1, le=1_000)


class BenefitCard(Definition):
    card_id: ExternalId
    name: Name
    #: 分; 0 for a free card.
    price: int = Field(0, ge=0, le=MAX_MONEY)
    validity_days: int = Field(ge=1, le=3650)
    benefits: list[CardBenefit] = Field(min_length=1, max_length=50)


class Grant(BaseModel):
    """A benefit a customer holds."""

    model_config = ConfigDict(frozen=True)

    grant_id: str
    customer_id: str
    benefit_id: str
    #: "direct", or "card:<holding id>".
    source: str
    uses_total: int | None = None
    uses_left: int | None = None
    granted_at: datetime
    expires_at: datetime | None = None
    reason: str | None = None
    granted_by: str | None = None

    def usable(self, now: datetime) -> bool:
        live = self.expires_at is None or now < self.expires_at
        return live and (self.uses_left is None or self.uses_left > 0)


class CardHolding(BaseModel):
    """One customer's card: bought once, renewed period by period."""

    model_config = ConfigDict(frozen=True)

    holding_id: str
    customer_id: str
    card_id: str
    price_paid: int
    payments: list[str]
    starts_at: datetime
    expires_at: datetime
    #: Set by the expiry sweep once `expires_at` has passed (and the expiry published).
    expired: bool = False
    version: int = 0

    def state(self, now: datetime) -> str:
        return "active" if now < self.expires_at else "expired"


def lapse(holding: CardHolding, now: datetime) -> CardHolding | None:
    """The holding marked expired, or None if it is not (yet, or any more) due."""
    if holding.expired or now < holding.expires_at:
        return None
    return holding.model_copy(update={"expired": True})


class WriteOff(BaseModel):
    model_config = ConfigDict(frozen=True)

    write_off_id: str
    customer_id: str
    grant_id: str
    benefit_id: str
    uses: int
    used_at: datetime
    used_by: str
    #: Where it was used (a store, an order), as the caller says.
    reference: str | None = None
    reversed_at: datetime | None = None
    reversed_by: str | None = None
    reversal_reason: str | None = None


def direct_grant(
    customer_id: str,
    benefit: Benefit,
    *,
    uses: int | None,
    valid_days: int | None,
    at: datetime,
    reason: str,
    granted_by: str,
) -> Grant:
    return Grant(
        grant_id=new_id("gr"),
        customer_id=customer_id,
        benefit_id=benefit.benefit_id,
        source="direct",
        uses_total=uses,
        uses_left=uses,
        granted_at=at,
        expires_at=at + timedelta(days=valid_days) if valid_days else None,
        reason=reason,
        granted_by=granted_by,
    )


def buy(
    customer_id: str, card: BenefitCard, *, payment_id: str, at: datetime
) -> tuple[CardHolding, list[Grant]]:
    holding = CardHolding(
        holding_id=new_id("ch"),
        customer_id=customer_id,
        card_id=card.card_id,
        price_paid=card.price,
        payments=[payment_id],
        starts_at=at,
        expires_at=at + timedelta(days=card.validity_days),
    )
    grants = [
        Grant(
            grant_id=new_id("gr"),
            customer_id=customer_id,
            benefit_id=b.benefit_id,
            source=f"card:{holding.holding_id}",
            uses_total=b.uses,
            uses_left=b.uses,
            granted_at=at,
            expires_at=holding.expires_at,
        )
        for b in card.benefits
    ]
    return holding, grants


def renew(
    holding: CardHolding, card: BenefitCard, grants: list[Grant], *, payment_id: str, at: datetime
) -> tuple[CardHolding, list[Grant]]:
    """Another period from the end of this one (or from now, if it has lapsed); counted
    benefits get their uses for the new period on top of what is left."""
    if card.card_id != holding.card_id:
        raise Conflict("the holding is of another card", code="card_mismatch")
    start = max(holding.expires_at, at)
    expires_at = start + timedelta(days=card.validity_days)
    renewed = holding.model_copy(
        update={
            "expires_at": expires_at,
            "expired": False,
            "payments": [*holding.payments, payment_id],
            "price_paid": holding.price_paid + card.price,
        }
    )
    uses = {b.benefit_id: b.uses for b in card.benefits}
    extended = [_extend(g, uses.get(g.benefit_id), expires_at) for g in grants]
    return renewed, extended


def _extend(grant: Grant, uses: int | None, expires_at: datetime) -> Grant:
    """Uses left of the period carry over into the next."""
    update: dict[str, object] = {"expires_at": expires_at}
    if uses is not None and grant.uses_left is not None:
        update["uses_left"] = grant.uses_left + uses
        update["uses_total"] = (grant.uses_total or 0) + uses
    return grant.model_copy(update=update)
