"""Redeem codes (兑换码): staff make lots of codes for a batch; a customer exchanges a code
for a coupon of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from servicekit.context import Actor, ActorDep, TenantDep
from servicekit.errors import Forbidden, InvalidInput, NotFound
from servicekit.idempotency import HEADER as IDEMPOTENCY_KEY
from servicekit.runtime import RuntimeDep
from services.coupon.api.claims import CouponView
from services.coupon.api.deps import DeskDep, Id, LimiterDep, settings_of
from services.coupon.domain.batches import ID_PATTERN
from services.coupon.service.codes import CodeDesk
from services.coupon.store.codes import CodeLot

router = APIRouter(tags=["redeem codes"])


async def _code_desk(runtime: RuntimeDep, desk: DeskDep, limiter: LimiterDep) -> CodeDesk:
    return CodeDesk(runtime, settings_of(runtime), desk, limiter)


async def staff_only(actor: ActorDep) -> Actor:
    """Partners reach only `/partner/...` through the gateway; refused here as well."""
    if actor.kind == "partner":
        raise Forbidden("partners may call only the partner API", code="partner_path")
    return actor


CodeDeskDep = Annotated[CodeDesk, Depends(_code_desk)]
StaffDep = Annotated[Actor, Depends(staff_only)]


def refuse_idempotency_key(request: Request) -> None:
    """An answer with plain codes must not be kept (the idempotency store keeps answers)."""
    if IDEMPOTENCY_KEY in request.headers:
        raise InvalidInput(
            "codes are shown once and never stored: send this request without Idempotency-Key",
            field="Idempotency-Key",
            code="idempotency_key_not_allowed",
        )


class NewLot(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(ge=1, strict=True)


class MadeLot(BaseModel):
    """A lot and its codes: the only time the codes are shown."""

    lot: CodeLot
    codes: list[str]


class LotView(CodeLot):
    used: int


class Redemption(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(pattern=ID_PATTERN)
    code: str = Field(min_length=1, max_length=40)


@router.post(
    "/batches/{batch_id}/code-lots", status_code=status.HTTP_201_CREATED, response_model=None
)
async def make_lot(
    batch_id: Id,
    body: NewLot,
    request: Request,
    tenant: TenantDep,
    actor: StaffDep,
    codes: CodeDeskDep,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> MadeLot | Response:
    """Make `count` redeem codes for the batch (up to `code_lot_max`, 100,000 by default;
    7-17 s per 100,000 on the embedded store). The codes are in this answer only: the
    service keeps just a keyed digest of each. As JSON, or with `?format=csv` a CSV file
    streamed chunk by chunk as the codes are written (so a large lot never waits past a
    proxy's read timeout); `X-Code-Count` says how many rows follow, and a shorter file
    means the lot broke off: void it and make another. Send it without Idempotency-Key
    (refused: the answer would be stored)."""
    refuse_idempotency_key(request)
    if body.count > codes.settings.code_lot_max:
        raise InvalidInput(f"at most {codes.settings.code_lot_max} codes per lot", field="count")
    if format == "csv":
        lot, chunks = await codes.start_lot(tenant, batch_id, body.count, by=actor.id)
        return StreamingResponse(
            _csv(chunks),
            status_code=status.HTTP_201_CREATED,
            media_type="text/csv",
            headers={
                "Content-Disposition": f'attachment; filename="{lot.id}.csv"',
                "X-Code-Lot-Id": lot.id,
                "X-Code-Count": str(lot.count),
            },
        )
    made = await codes.make_lot(tenant, batch_id, body.count, by=actor.id)
    return MadeLot(lot=made.lot, codes=made.codes)


async def _csv(chunks: AsyncIterator[list[str]]) -> AsyncIterator[str]:
    yield "code\n"
    async for chunk in chunks:
        yield "".join(f"{code}\n" for code in chunk)


@router.get("/batches/{batch_id}/code-lots")
async def list_lots(
    batch_id: Id, tenant: TenantDep, actor: StaffDep, codes: CodeDeskDep
) -> list[CodeLot]:
    """The batch's lots (staff's and partners'), newest first."""
    return await codes.store.lots_of(tenant, batch_id)


@router.get("/code-lots/{lot_id}")
async def get_lot(lot_id: Id, tenant: TenantDep, actor: StaffDep, codes: CodeDeskDep) -> LotView:
    """A lot with how many of its codes were redeemed (counted now: a scan of the codes)."""
    lot = await lot_or_404(codes, tenant, lot_id)
    return LotView(**lot.model_dump(), used=await codes.store.used_in(tenant, lot.id))


@router.post("/code-lots/{lot_id}/void")
async def void_lot(lot_id: Id, tenant: TenantDep, actor: StaffDep, codes: CodeDeskDep) -> CodeLot:
    """Void a lot: its codes not yet redeemed are refused from now on (on every replica
    within 2 s), with the same answer as codes that do not exist; coupons already issued
    from it stay. Voiding again changes nothing."""
    await lot_or_404(codes, tenant, lot_id)
    await codes.void(tenant, lot_id, by=actor.id)
    return await lot_or_404(codes, tenant, lot_id)


async def lot_or_404(codes: CodeDesk, tenant: str, lot_id: str) -> CodeLot:
    lot = await codes.store.lot(tenant, lot_id)
    if lot is None:
        raise NotFound(f"no code lot {lot_id}", code="lot_not_found")
    return lot


@router.post("/codes/redemptions", status_code=status.HTTP_201_CREATED)
async def redeem(
    body: Redemption, response: Response, tenant: TenantDep, actor: StaffDep, codes: CodeDeskDep
) -> CouponView:
    """Exchange a code for a coupon of its batch (201; 200 with the same coupon when this
    customer redeemed it before). A mistyped code is 422 `code_mistyped` (its check symbol
    is wrong); a code that does not exist or another customer used is 409
    `code_not_redeemable`, the same answer for both. After `code_failures_per_window` such
    failures in a window the customer gets 429 with Retry-After. The batch's refusals
    (sold_out, limit_reached, claim_closed, ...) are 409 as for claims. A member (signed in
    through the gateway) redeems for themself only."""
    if actor.kind == "member" and actor.id != body.customer_id:
        raise Forbidden("a member redeems codes for themself only", code="not_this_member")
    claimed = await codes.redeem(tenant, body.customer_id, body.code)
    if not claimed.created:
        response.status_code = status.HTTP_200_OK
    return CouponView.of(claimed.coupon, claimed.coupon.claimed_at)
