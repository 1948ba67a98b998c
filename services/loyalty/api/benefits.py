"""Benefit routes: benefit and card definitions, direct grants, card purchase and
renewal, what a customer holds, write-offs and their reversal."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response, status
from pydantic import BaseModel, ConfigDict, Field

from servicekit.context import ActorDep, TenantDep
from servicekit.errors import InvalidInput
from servicekit.runtime import RuntimeDep
from services.loyalty.api.deps import CustomerId, ExternalIdPath, IdempotencyKeyDep, OperatorDep
from services.loyalty.domain.benefits import Benefit, BenefitCard, CardHolding, Grant, WriteOff
from services.loyalty.domain.values import ExternalId, Reason
from services.loyalty.service.benefits import BenefitService, Done

router = APIRouter(tags=["benefits"])
GeneratedId = Annotated[str, Path(pattern=r"^[a-z]{2}_[0-9a-f]{32}$")]


async def benefit_service(runtime: RuntimeDep) -> BenefitService:
    return BenefitService(runtime.uow)


BenefitsDep = Annotated[BenefitService, Depends(benefit_service)]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GrantRequest(Request):
    benefit_id: ExternalId
    #: None: unlimited uses.
    uses: int | None = Field(None, ge=1, le=1_000)
    #: None: no expiry.
    valid_days: int | None = Field(None, ge=1, le=3650)
    reason: Reason


class CardPurchase(Request):
    card_id: ExternalId
    #: The payment for the card (a free card: any unique reference).
    payment_id: ExternalId


class CardRenewal(Request):
    payment_id: ExternalId


class WriteOffRequest(Request):
    uses: int = Field(1, ge=1, le=100)
    #: Where it was used (a store, an order).
    reference: ExternalId | None = None


class ReversalRequest(Request):
    reason: Reason


class HoldingsView(BaseModel):
    grants: list[Grant]
    cards: list[CardHolding]
    tier_benefits: list[Benefit]


def _answer(done: Done, response: Response) -> object:
    if done.repeated:
        response.status_code = status.HTTP_200_OK
    return done.value


@router.put("/benefits/{benefit_id}")
async def define_benefit(
    benefit_id: ExternalIdPath,
    body: Benefit,
    tenant: TenantDep,
    operator: OperatorDep,
    service: BenefitsDep,
) -> Benefit:
    if body.benefit_id != benefit_id:
        raise InvalidInput("must match the path", field="benefit_id")
    await service.define_benefit(tenant, body)
    return body


@router.get("/benefits")
async def list_benefits(tenant: TenantDep, service: BenefitsDep) -> list[Benefit]:
    return await service.benefits(tenant)


@router.put("/benefit-cards/{card_id}")
async def define_card(
    card_id: ExternalIdPath,
    body: BenefitCard,
    tenant: TenantDep,
    operator: OperatorDep,
    service: BenefitsDep,
) -> BenefitCard:
    """A card bundling defined benefits (uses per period, or unlimited) for a validity
    period at a price (0: free). 422 `benefit_not_found` names undefined benefits."""
    if body.card_id != card_id:
        raise InvalidInput("must match the path", field="card_id")
    await service.define_card(tenant, body)
    return body


@router.get("/benefit-cards")
async def list_cards(tenant: TenantDep, service: BenefitsDep) -> list[BenefitCard]:
    return await service.cards(tenant)


@router.get("/customers/{customer_id}/benefits")
async def get_holdings(
    customer_id: CustomerId, tenant: TenantDep, service: BenefitsDep
) -> HoldingsView:
    """Grants (direct and by card, with uses left and expiry), cards, and the benefits of
    the customer's tier."""
    held = await service.holdings(tenant, customer_id)
    return HoldingsView(grants=held.grants, cards=held.cards, tier_benefits=held.tier_benefits)


@router.post("/customers/{customer_id}/benefits", status_code=201)
async def grant_benefit(
    customer_id: CustomerId,
    body: GrantRequest,
    key: IdempotencyKeyDep,
    tenant: TenantDep,
    actor: OperatorDep,
    service: BenefitsDep,
    response: Response,
) -> Grant:
    """Grant a benefit directly (goodwill, a campaign prize), with a reason."""
    done = await service.grant(
        tenant,
        customer_id,
        body.benefit_id,
        uses=body.uses,
        valid_days=body.valid_days,
        reason=body.reason,
        operator=actor.id,
        key=key,
    )
    return _answer(done, response)  # type: ignore[return-value]


@router.post("/customers/{customer_id}/benefit-cards", status_code=201)
async def buy_card(
    customer_id: CustomerId,
    body: CardPurchase,
    tenant: TenantDep,
    service: BenefitsDep,
    response: Response,
) -> CardHolding:
    """Buy (or take a free) card: its benefits are granted until it expires. Publishes
    `loyalty.benefit_card_purchased.v1`. Idempotent by `payment_id`."""
    done = await service.buy_card(tenant, customer_id, body.card_id, body.payment_id)
    return _answer(done, response)  # type: ignore[return-value]


@router.post("/customers/{customer_id}/benefit-cards/{holding_id}/renewals", status_code=201)
async def renew_card(
    customer_id: CustomerId,
    holding_id: GeneratedId,
    body: CardRenewal,
    tenant: TenantDep,
    service: BenefitsDep,
    response: Response,
) -> CardHolding:
    """Another period from the end of the current one (from now if it lapsed); counted
    benefits get the period's uses on top of those left."""
    done = await service.renew_card(tenant, customer_id, holding_id, body.payment_id)
    return _answer(done, response)  # type: ignore[return-value]


@router.post("/customers/{customer_id}/benefits/{grant_id}/write-offs", status_code=201)
async def write_off_benefit(
    customer_id: CustomerId,
    grant_id: GeneratedId,
    body: WriteOffRequest,
    key: IdempotencyKeyDep,
    tenant: TenantDep,
    actor: ActorDep,
    service: BenefitsDep,
    response: Response,
) -> WriteOff:
    """Use a benefit (核销). 409 `benefit_used_up` when fewer uses are left than asked or it
    has expired; concurrent write-offs never use more than there are."""
    done = await service.write_off(
        tenant,
        customer_id,
        grant_id,
        uses=body.uses,
        reference=body.reference,
        operator=actor.id,
        key=key,
    )
    return _answer(done, response)  # type: ignore[return-value]


@router.get("/customers/{customer_id}/benefits/{grant_id}/write-offs")
async def list_write_offs(
    customer_id: CustomerId, grant_id: GeneratedId, tenant: TenantDep, service: BenefitsDep
) -> list[WriteOff]:
    return [w for w in await service.uses_of(tenant, grant_id) if w.customer_id == customer_id]


@router.post("/write-offs/{write_off_id}/reversal")
async def reverse_write_off(
    write_off_id: GeneratedId,
    body: ReversalRequest,
    tenant: TenantDep,
    actor: OperatorDep,
    service: BenefitsDep,
) -> WriteOff:
    """An operator undoes a write-off: its uses are back on the grant. 409
    `already_reversed` the second time."""
    return await service.reverse_write_off(
        tenant, write_off_id, reason=body.reason, operator=actor.id
    )
