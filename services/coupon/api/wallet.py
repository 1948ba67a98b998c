"""The wallet (卡包) and redemption (核销) at checkout: quote, lock, confirm, release,
refund, revoke. Confirm, release and refund also follow the customer service's order
events; these routes serve commerce systems that call directly."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from servicekit.clock import utcnow
from servicekit.context import TenantDep
from servicekit.errors import NotFound
from servicekit.pagination import Page, PageRequestDep
from services.coupon.api.claims import CouponView
from services.coupon.api.deps import DeskDep, Id, RedemptionDep
from services.coupon.domain.batches import ID_PATTERN
from services.coupon.domain.checkout import OrderDraft
from services.coupon.domain.coupons import CouponState
from services.coupon.domain.refunds import RefundLine
from services.coupon.service.redemption import Quote, Refund, RefundAnswer

router = APIRouter(tags=["wallet and redemption"])


class LockBody(BaseModel):
    customer_id: str = Field(pattern=ID_PATTERN)
    order: OrderDraft


class Released(BaseModel):
    coupon: CouponView | None


@router.get("/customers/{customer_id}/coupons")
async def wallet(
    customer_id: Id,
    tenant: TenantDep,
    desk: DeskDep,
    page: PageRequestDep,
    state: Annotated[list[CouponState] | None, Query()] = None,
) -> Page[CouponView]:
    """The customer's coupons, newest first, optionally by state as of now (a coupon past
    its validity is expired, a lock past its expiry no longer holds)."""
    now = utcnow()
    items, cursor = await desk.coupons.wallet(tenant, customer_id, page, now, state)
    return Page(items=[CouponView.of(c, now) for c in items], next_cursor=cursor)


@router.get("/coupons/{coupon_id}")
async def get_coupon(coupon_id: Id, tenant: TenantDep, desk: DeskDep) -> CouponView:
    coupon = await desk.coupons.get(tenant, coupon_id)
    if coupon is None:
        raise NotFound(f"no coupon {coupon_id}", code="coupon_not_found")
    return CouponView.of(coupon, utcnow())


@router.post("/customers/{customer_id}/quote")
async def quote(
    customer_id: Id, body: OrderDraft, tenant: TenantDep, redemption: RedemptionDep
) -> Quote:
    """The customer's coupons that apply to the order with the discount each gives, best
    first, and the others with why not. Prices are after promotions (coupons stack with
    them); one coupon per order."""
    return await redemption.quote(tenant, customer_id, body)


@router.post("/coupons/{coupon_id}/lock")
async def lock(
    coupon_id: Id, body: LockBody, tenant: TenantDep, redemption: RedemptionDep
) -> CouponView:
    """Hold the coupon for the unpaid order (expires after the lock time). 409
    `coupon_not_applicable` (with `reason`), `coupon_not_available`, `order_has_coupon`."""
    coupon = await redemption.lock(tenant, body.customer_id, coupon_id, body.order)
    return CouponView.of(coupon, utcnow())


@router.post("/orders/{order_id}/confirm")
async def confirm(order_id: Id, tenant: TenantDep, redemption: RedemptionDep) -> CouponView:
    """The order is paid: its coupon is used and the discount charged to the budget.
    Confirming again answers the same."""
    return CouponView.of(await redemption.confirm(tenant, order_id), utcnow())


@router.post("/orders/{order_id}/release")
async def release(order_id: Id, tenant: TenantDep, redemption: RedemptionDep) -> Released:
    """The order is cancelled unpaid: its coupon is available again."""
    coupon = await redemption.release(tenant, order_id)
    return Released(coupon=CouponView.of(coupon, utcnow()) if coupon else None)


class RefundBody(BaseModel):
    """A partial refund names its lines (and its id, so a repeat counts once); without
    lines the whole order is refunded."""

    refund_id: str = Field(pattern=ID_PATTERN)
    lines: list[RefundLine] | None = Field(None, min_length=1, max_length=500)


@router.post("/orders/{order_id}/refund")
async def refund(
    order_id: Id, tenant: TenantDep, redemption: RedemptionDep, body: RefundBody | None = None
) -> RefundAnswer:
    """The paid order is refunded. Wholly (no body, or no lines): the coupon returns to the
    wallet if its batch allows it and it is still valid, and the subsidy not given back yet
    leaves the budget's consumed. In part: the coupon stays used and the refunded lines'
    pro-rated share of the discount is given back (`given_back`)."""
    request = Refund(body.refund_id, body.lines) if body else None
    return await redemption.refund(tenant, order_id, request)


@router.post("/coupons/{coupon_id}/revoke")
async def revoke(coupon_id: Id, tenant: TenantDep, redemption: RedemptionDep) -> CouponView:
    return CouponView.of(await redemption.revoke(tenant, coupon_id), utcnow())
