"""Point routes: the tenant's earning rule, a customer's account and ledger, manual
adjustments, redemption for goods and paying for an order with points."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field

from servicekit.context import TenantDep
from servicekit.pagination import Page, PageRequestDep
from services.loyalty.api.deps import (
    CustomerId,
    ExternalIdPath,
    IdempotencyKeyDep,
    OperatorDep,
    PointsDep,
)
from services.loyalty.domain.earning import EarningRule
from services.loyalty.domain.ledger import Entry, PointAccount
from services.loyalty.domain.values import MAX_POINTS, ExternalId, Money, Points, Reason
from services.loyalty.service.points import Posting, Spend

router = APIRouter(tags=["points"])


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Adjustment(Request):
    #: Positive adds a lot; negative takes first-expiring-first, never below zero.
    points: Annotated[int, Field(ge=-MAX_POINTS, le=MAX_POINTS)]
    reason: Reason


class Redemption(Request):
    points: Points
    #: What the points buy (a gift's SKU, a service).
    reward: ExternalId


class Payment(Request):
    order_id: ExternalId
    order_amount: Money
    points: Points


class LotView(BaseModel):
    lot_id: str
    remaining: int
    expires_at: datetime


class AccountView(BaseModel):
    customer_id: str
    #: Spendable points less any debt (negative while a reversal's debt is unpaid).
    balance: int
    pending: int
    debt: int
    lots: list[LotView]

    @classmethod
    def of(cls, account: PointAccount) -> AccountView:
        return cls(
            customer_id=account.customer_id,
            balance=account.balance,
            pending=account.pending_points,
            debt=account.debt,
            lots=[LotView.model_validate(lot.model_dump()) for lot in account.lots],
        )


class PostingView(BaseModel):
    entry: Entry
    account: AccountView

    @classmethod
    def of(cls, posting: Posting, response: Response) -> PostingView:
        if posting.repeated:
            response.status_code = status.HTTP_200_OK
        return cls(entry=posting.entry, account=AccountView.of(posting.account))


@router.put("/earning-rule")
async def set_earning_rule(
    body: EarningRule, tenant: TenantDep, actor: OperatorDep, points: PointsDep
) -> EarningRule:
    """Set the tenant's earning rule: points per yuan, category and campaign multipliers,
    caps, bonuses, hold (return window) and validity days, the payment cap."""
    await points.set_rule(tenant, body, changed_by=actor.id)
    return body


@router.get("/earning-rule")
async def get_earning_rule(tenant: TenantDep, points: PointsDep) -> EarningRule:
    return await points.rule(tenant)


@router.get("/customers/{customer_id}/points")
async def get_points(customer_id: CustomerId, tenant: TenantDep, points: PointsDep) -> AccountView:
    """Balance, held points, debt, and the lots first-expiring-first."""
    return AccountView.of(await points.account(tenant, customer_id))


@router.get("/customers/{customer_id}/points/entries")
async def list_point_entries(
    customer_id: CustomerId, tenant: TenantDep, points: PointsDep, page: PageRequestDep
) -> Page[Entry]:
    """The ledger, newest first: every earning, hold, release, spend, expiry, reversal."""
    items, cursor = await points.entries(tenant, customer_id, page)
    return Page(items=items, next_cursor=cursor)


@router.post("/customers/{customer_id}/points/adjustments", status_code=201)
async def adjust_points(
    customer_id: CustomerId,
    body: Adjustment,
    key: IdempotencyKeyDep,
    tenant: TenantDep,
    actor: OperatorDep,
    points: PointsDep,
    response: Response,
) -> PostingView:
    """An operator's manual adjustment with a reason; publishes `loyalty.points_adjusted.v1`.
    422 `insufficient_points` when taking more than the balance."""
    posting = await points.adjust(
        tenant, customer_id, body.points, reason=body.reason, operator=actor.id, key=key
    )
    return PostingView.of(posting, response)


@router.post("/customers/{customer_id}/points/redemptions", status_code=201)
async def redeem_points(
    customer_id: CustomerId,
    body: Redemption,
    key: IdempotencyKeyDep,
    tenant: TenantDep,
    points: PointsDep,
    response: Response,
) -> PostingView:
    """Exchange points for goods; publishes `loyalty.points_spent.v1`. 422
    `insufficient_points` beyond the balance; the same key again answers 200 with the same
    entry and takes nothing more."""
    spend = Spend(customer_id, body.points, "redemption", body.reward, key)
    return PostingView.of(await points.spend(tenant, spend), response)


@router.post("/customers/{customer_id}/points/payments", status_code=201)
async def pay_with_points(
    customer_id: CustomerId,
    body: Payment,
    key: IdempotencyKeyDep,
    tenant: TenantDep,
    points: PointsDep,
    response: Response,
) -> PostingView:
    """Pay part of an order with points. 422 `points_payment_cap` beyond the rule's share of
    the order or its points per order (`max_points` says what is allowed). One payment per
    order: the same order again answers 200 with the first payment."""
    posting = await points.pay(
        tenant,
        customer_id,
        order_id=body.order_id,
        order_amount=body.order_amount,
        points=body.points,
        key=key,
    )
    return PostingView.of(posting, response)


@router.post("/customers/{customer_id}/points/payments/{order_id}/refund", status_code=201)
async def refund_points_payment(
    customer_id: CustomerId,
    order_id: ExternalIdPath,
    tenant: TenantDep,
    operator: OperatorDep,
    points: PointsDep,
    response: Response,
) -> PostingView:
    """The order paid with points was cancelled or refunded: its points go back into the
    lots they came from, with their expiry. Publishes `loyalty.points_restored.v1`; the
    same again answers 200 and restores nothing more. 404 `payment_not_found`."""
    return PostingView.of(await points.refund_payment(tenant, customer_id, order_id), response)
