"""Partner exchange (异业合作).

Partner routes live under `/partner/...`: the gateway lets a partner's signed request through
only there, with `X-Actor-Kind: partner` and `X-Actor-Id: <partner id>`; anyone else is 403
here. Each partner request counts in the partner's own rate window. Staff routes (quotas,
rates, webhook addresses, giving partner offers, deliveries) refuse partners."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    StringConstraints,
    model_validator,
)

from servicekit.clock import utcnow
from servicekit.context import ActorDep, TenantDep
from servicekit.errors import Forbidden, InvalidInput, NotFound
from servicekit.runtime import RuntimeDep
from services.coupon.api.claims import CouponView
from services.coupon.api.codes import CodeDeskDep, StaffDep, refuse_idempotency_key
from services.coupon.api.deps import DeskDep, Id, LimiterDep, settings_of
from services.coupon.domain.batches import ID_PATTERN
from services.coupon.domain.partners import (
    PARTNER_ID_PATTERN,
    DeliveryState,
    PartnerCoupon,
    PartnerOffer,
    Quota,
    webhook_secret,
)
from services.coupon.service.partners import PartnerDesk
from services.coupon.store.codes import CodeLot
from services.coupon.store.partner_webhooks import Delivery, DeliveryStore

router = APIRouter(tags=["partner exchange"])
PartnerId = Annotated[str, Path(pattern=PARTNER_ID_PATTERN)]
PartnerCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
MAX_OFFER_UNITS = 100_000


async def _partners(
    runtime: RuntimeDep, desk: DeskDep, limiter: LimiterDep, codes: CodeDeskDep
) -> PartnerDesk:
    return PartnerDesk(runtime, settings_of(runtime), desk, limiter, codes)


PartnersDep = Annotated[PartnerDesk, Depends(_partners)]


async def _calling_partner(actor: ActorDep, tenant: TenantDep, partners: PartnersDep) -> str:
    """The partner making the request (admitted by its rate limit), or 403."""
    if actor.kind != "partner" or not re.fullmatch(PARTNER_ID_PATTERN, actor.id):
        raise Forbidden("only a partner may call the partner API", code="partner_only")
    await partners.admit(tenant, actor.id)
    return actor.id


PartnerDep = Annotated[str, Depends(_calling_partner)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QuotaBody(Strict):
    partner_id: str = Field(pattern=PARTNER_ID_PATTERN)
    codes: int = Field(ge=0, le=10_000_000)
    direct_issues: int = Field(ge=0, le=10_000_000)


class RateBody(Strict):
    #: The partner's own limit; null goes back to `partner_requests_per_second`.
    requests_per_second: int | None = Field(ge=1, le=100_000)


class WebhookBody(Strict):
    url: HttpUrl
    #: A new secret (the old one stops being used for the next delivery).
    rotate_secret: bool = False


class WebhookView(BaseModel):
    partner_id: str
    url: str
    secret_version: int
    #: Shown to staff to hand to the partner; derived, not stored.
    secret: str


class TakeBody(Strict):
    count: int = Field(ge=1, strict=True)


class TakenCode(BaseModel):
    code: str
    #: What webhooks name the code by when a customer exchanges and uses it.
    code_id: str


class TakenCodes(BaseModel):
    lot_id: str
    codes: list[TakenCode]
    codes_left: int


class IssueBody(Strict):
    mobile: str = Field(pattern=r"^\+?[0-9][0-9 \-]{5,19}$")
    #: The partner's id for this issue: the same one answers the same coupon.
    reference: str = Field(pattern=ID_PATTERN)


class OfferBody(Strict):
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    value: int = Field(ge=1, le=100_000_000)
    valid_from: datetime
    valid_until: datetime
    #: The partner's codes, one per customer given; or just a count without codes.
    codes: list[PartnerCode] | None = Field(None, min_length=1, max_length=10_000)
    count: int | None = Field(None, ge=1, le=MAX_OFFER_UNITS)

    @model_validator(mode="after")
    def _one_kind(self) -> OfferBody:
        if (self.codes is None) == (self.count is None):
            raise ValueError("send either codes or count")
        if self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        if self.codes is not None and len(set(self.codes)) != len(self.codes):
            raise ValueError("codes must be distinct")
        return self


class GiveBody(Strict):
    customer_id: str = Field(pattern=ID_PATTERN)


# ------------------------------------------------------------------------ staff routes


@router.post("/batches/{batch_id}/partner-quotas")
async def allocate_quota(
    batch_id: Id, body: QuotaBody, tenant: TenantDep, actor: StaffDep, partners: PartnersDep
) -> Quota:
    """Set the partner's quota on the batch: totals of codes it may take and coupons it may
    issue by mobile. What it already used stays used (a total below it is 409)."""
    return await partners.allocate(
        tenant, batch_id, body.partner_id, body.codes, body.direct_issues, by=actor.id
    )


@router.get("/partners/{partner_id}/quotas")
async def partner_quotas(
    partner_id: PartnerId, tenant: TenantDep, actor: StaffDep, partners: PartnersDep
) -> list[Quota]:
    return await partners.store.quotas_of(tenant, partner_id)


@router.put("/partners/{partner_id}/rate")
async def set_partner_rate(
    partner_id: PartnerId, body: RateBody, tenant: TenantDep, actor: StaffDep, partners: PartnersDep
) -> dict[str, Any]:
    """The partner's own request rate, over all replicas (null: the default)."""
    doc = await partners.store.set_rate(tenant, partner_id, body.requests_per_second, utcnow())
    return {"partner_id": partner_id, "requests_per_second": doc.get("requests_per_second")}


@router.put("/partners/{partner_id}/webhook")
async def set_partner_webhook(
    partner_id: PartnerId,
    body: WebhookBody,
    tenant: TenantDep,
    actor: StaffDep,
    partners: PartnersDep,
) -> WebhookView:
    """Where the partner is told of usage, and the secret it checks signatures with
    (staff set the address, so a partner cannot point our sender at internal hosts)."""
    doc = await partners.store.set_webhook(
        tenant, partner_id, str(body.url), body.rotate_secret, utcnow()
    )
    version = int(doc["secret_version"])
    secret = webhook_secret(partners.settings.secret_key, tenant, partner_id, version)
    return WebhookView(partner_id=partner_id, url=doc["webhook_url"], secret_version=version,
                       secret=secret)  # fmt: skip


@router.get("/partner-offers")
async def all_partner_offers(
    tenant: TenantDep,
    actor: StaffDep,
    partners: PartnersDep,
    partner_id: Annotated[str | None, Query(pattern=PARTNER_ID_PATTERN)] = None,
) -> list[PartnerOffer]:
    return await partners.store.offers_of(tenant, partner_id)


@router.post("/partner-offers/{offer_id}/gives", status_code=status.HTTP_201_CREATED)
async def give_partner_offer(
    offer_id: Id,
    body: GiveBody,
    response: Response,
    tenant: TenantDep,
    actor: StaffDep,
    partners: PartnersDep,
) -> PartnerCoupon:
    """Give one of the partner's coupons to our customer (201; 200 with the same one if
    given before: one per customer per offer). 409 `offer_exhausted` or `offer_not_valid`.
    The partner is told by webhook (`partner_offer.given`)."""
    give, created = await partners.give(tenant, offer_id, body.customer_id, by=actor.id)
    if not created:
        response.status_code = status.HTTP_200_OK
    return give


@router.get("/customers/{customer_id}/partner-coupons")
async def partner_coupons(
    customer_id: Id, tenant: TenantDep, partners: PartnersDep
) -> list[PartnerCoupon]:
    """Partners' coupons given to the customer, newest first. They are listed apart from
    the wallet: they are used at the partner, not at our checkout."""
    return await partners.store.given_to(tenant, customer_id)


@router.get("/partner-webhooks/deliveries")
async def webhook_deliveries(
    tenant: TenantDep,
    actor: StaffDep,
    runtime: RuntimeDep,
    partner_id: Annotated[str | None, Query(pattern=PARTNER_ID_PATTERN)] = None,
    state: DeliveryState | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[Delivery]:
    """Webhook deliveries, newest first: `failed` ones gave up after every attempt."""
    return await DeliveryStore(runtime.db).listed(tenant, partner_id, state, limit)


@router.post("/partner-webhooks/deliveries/{delivery_id}/replay")
async def replay_delivery(
    delivery_id: Id, tenant: TenantDep, actor: StaffDep, runtime: RuntimeDep
) -> Delivery:
    """Send a failed delivery again, with a fresh round of attempts."""
    store = DeliveryStore(runtime.db)
    replayed = await store.replay(tenant, delivery_id, utcnow())
    if replayed is None:
        if await store.get(tenant, delivery_id) is None:
            raise NotFound(f"no delivery {delivery_id}", code="delivery_not_found")
        raise InvalidInput("only a failed delivery is replayed", field="state", code="not_failed")
    return replayed


# ---------------------------------------------------------------------- partner routes


@router.get("/partner/quotas")
async def my_quotas(tenant: TenantDep, partner: PartnerDep, partners: PartnersDep) -> list[Quota]:
    """The calling partner's quotas, per batch."""
    return await partners.store.quotas_of(tenant, partner)


@router.post("/partner/batches/{batch_id}/codes", status_code=status.HTTP_201_CREATED)
async def take_codes(
    batch_id: Id,
    body: TakeBody,
    request: Request,
    tenant: TenantDep,
    partner: PartnerDep,
    partners: PartnersDep,
) -> TakenCodes:
    """Take `count` redeem codes of the batch from the partner's quota (409
    `quota_exhausted` when fewer are left; concurrent takes never exceed it). The codes
    are in this answer only; customers redeem them with us. No Idempotency-Key (the
    answer would be stored)."""
    refuse_idempotency_key(request)
    most = partners.settings.partner_codes_per_take
    if body.count > most:
        raise InvalidInput(f"at most {most} codes per request", field="count")
    taken = await partners.take_codes(tenant, batch_id, partner, body.count)
    codes = [TakenCode(code=c, code_id=f"{taken.lot.id}.{n}") for n, c in enumerate(taken.codes, 1)]
    return TakenCodes(lot_id=taken.lot.id, codes=codes, codes_left=taken.quota.codes_left)


@router.post("/partner/batches/{batch_id}/issues", status_code=status.HTTP_201_CREATED)
async def issue_by_mobile(
    batch_id: Id,
    body: IssueBody,
    response: Response,
    tenant: TenantDep,
    partner: PartnerDep,
    partners: PartnersDep,
) -> CouponView:
    """Issue a coupon of the batch to our customer with this mobile, within the partner's
    quota of direct issues; idempotent by `reference` (the same one: the same coupon, 200,
    counted once). 404 `customer_not_found`; 409 `quota_exhausted`, `reference_reused` or
    the batch's refusals (sold_out, limit_reached, ...)."""
    claimed = await partners.issue_by_mobile(tenant, batch_id, partner, body.mobile, body.reference)
    if not claimed.created:
        response.status_code = status.HTTP_200_OK
    return CouponView.of(claimed.coupon, claimed.coupon.claimed_at)


@router.get("/partner/code-lots")
async def my_code_lots(
    tenant: TenantDep,
    partner: PartnerDep,
    codes: CodeDeskDep,
    batch_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
) -> list[CodeLot]:
    """The lots of codes the partner took, newest first: a take whose answer never arrived
    shows here, and can be voided."""
    return await codes.store.lots_of(tenant, batch_id, partner)


@router.post("/partner/code-lots/{lot_id}/void")
async def void_my_lot(
    lot_id: Id, tenant: TenantDep, partner: PartnerDep, codes: CodeDeskDep
) -> CodeLot:
    """Void one of the partner's lots: its codes not yet redeemed are refused from now on.
    (The quota is not given back: staff may raise it.)"""
    lot = await codes.store.lot(tenant, lot_id)
    if lot is None or lot.partner_id != partner:
        raise NotFound(f"no code lot {lot_id} of this partner", code="lot_not_found")
    await codes.void(tenant, lot_id, by=partner)
    voided = await codes.store.lot(tenant, lot_id)
    assert voided is not None
    return voided


@router.post("/partner/offers", status_code=status.HTTP_201_CREATED)
async def register_offer(
    body: OfferBody, tenant: TenantDep, partner: PartnerDep, partners: PartnersDep
) -> PartnerOffer:
    """Register one of the partner's own coupons for us to give our customers: its
    title, value (minor units), validity, and its codes (one per customer) or a count."""
    codes = body.codes or []
    return await partners.add_offer(
        tenant, partner, title=body.title, value=body.value, valid_from=body.valid_from,
        valid_until=body.valid_until, codes=codes, count=len(codes) or int(body.count or 0),
    )  # fmt: skip


@router.get("/partner/offers")
async def my_offers(
    tenant: TenantDep, partner: PartnerDep, partners: PartnersDep
) -> list[PartnerOffer]:
    return await partners.store.offers_of(tenant, partner)
