"""Stored-value routes: the tenant's top-up offers and spend order, a customer's account
and movements, top-up, spend, reversal of a spend, refund, freeze and unfreeze."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel, ConfigDict

from servicekit.context import TenantDep
from servicekit.pagination import Page, PageRequestDep
from servicekit.runtime import RuntimeDep
from services.loyalty.api.deps import CustomerId, ExternalIdPath, IdempotencyKeyDep, OperatorDep
from services.loyalty.domain.stored_value import StoredValueAccount, StoredValueScheme, ValueEntry
from services.loyalty.domain.values import ExternalId, Money, Reason
from services.loyalty.service.stored_value import Moving, StoredValueService

router = APIRouter(tags=["stored value"])


async def stored_value_service(runtime: RuntimeDep) -> StoredValueService:
    return StoredValueService(runtime.uow)


StoredValueDep = Annotated[StoredValueService, Depends(stored_value_service)]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TopUp(Request):
    amount: Money
    #: The payment that paid for it (one top-up per payment).
    payment_id: ExternalId


class SpendRequest(Request):
    amount: Money
    order_id: ExternalId


class RefundRequest(Request):
    amount: Money


class FreezeRequest(Request):
    reason: Reason


class AccountView(BaseModel):
    customer_id: str
    principal: int
    bonus: int
    balance: int
    frozen: bool
    frozen_reason: str | None

    @classmethod
    def of(cls, account: StoredValueAccount) -> AccountView:
        return cls(balance=account.balance, **account.model_dump(exclude={"version"}))


class MovingView(BaseModel):
    entry: ValueEntry
    account: AccountView

    @classmethod
    def of(cls, moving: Moving, response: Response) -> MovingView:
        if moving.repeated:
            response.status_code = status.HTTP_200_OK
        return cls(entry=moving.entry, account=AccountView.of(moving.account))


BASE = "/customers/{customer_id}/stored-value"


@router.put("/stored-value-scheme")
async def set_stored_value_scheme(
    body: StoredValueScheme, tenant: TenantDep, actor: OperatorDep, service: StoredValueDep
) -> StoredValueScheme:
    """Top-up offers (top up at least X, get Y bonus) and the spend order."""
    await service.set_scheme(tenant, body, changed_by=actor.id)
    return body


@router.get("/stored-value-scheme")
async def get_stored_value_scheme(tenant: TenantDep, service: StoredValueDep) -> StoredValueScheme:
    return await service.scheme(tenant)


@router.get(BASE)
async def get_stored_value(
    customer_id: CustomerId, tenant: TenantDep, service: StoredValueDep
) -> AccountView:
    return AccountView.of(await service.account(tenant, customer_id))


@router.get(f"{BASE}/entries")
async def list_stored_value_entries(
    customer_id: CustomerId, tenant: TenantDep, service: StoredValueDep, page: PageRequestDep
) -> Page[ValueEntry]:
    """Every movement, newest first, with both changes and both balances after."""
    items, cursor = await service.entries(tenant, customer_id, page)
    return Page(items=items, next_cursor=cursor)


@router.post(f"{BASE}/top-ups", status_code=201)
async def top_up(
    customer_id: CustomerId,
    body: TopUp,
    tenant: TenantDep,
    service: StoredValueDep,
    response: Response,
) -> MovingView:
    """Add principal, and the best matching offer's bonus. Idempotent by `payment_id`."""
    moving = await service.top_up(tenant, customer_id, body.amount, body.payment_id)
    return MovingView.of(moving, response)


@router.post(f"{BASE}/spends", status_code=201)
async def spend_stored_value(
    customer_id: CustomerId,
    body: SpendRequest,
    tenant: TenantDep,
    service: StoredValueDep,
    response: Response,
) -> MovingView:
    """Pay (part of) an order. 422 `insufficient_balance`; 409 `account_frozen`. One spend
    per order: the same order again answers 200 with the first spend."""
    moving = await service.spend(tenant, customer_id, body.amount, body.order_id)
    return MovingView.of(moving, response)


@router.post(f"{BASE}/spends/{{order_id}}/reversal", status_code=201)
async def reverse_stored_value_spend(
    customer_id: CustomerId,
    order_id: ExternalIdPath,
    tenant: TenantDep,
    service: StoredValueDep,
    response: Response,
) -> MovingView:
    """The order was refunded: its spend goes back, principal and bonus as they were taken."""
    moving = await service.reverse_spend(tenant, customer_id, order_id)
    return MovingView.of(moving, response)


@router.post(f"{BASE}/refunds", status_code=201)
async def refund_stored_value(
    customer_id: CustomerId,
    body: RefundRequest,
    key: IdempotencyKeyDep,
    tenant: TenantDep,
    actor: OperatorDep,
    service: StoredValueDep,
    response: Response,
) -> MovingView:
    """Pay principal back to the customer (bonus is never paid out; it is forfeited with
    the last of the principal). 422 `refund_exceeds_principal`."""
    moving = await service.refund(tenant, customer_id, body.amount, key=key, operator=actor.id)
    return MovingView.of(moving, response)


@router.post(f"{BASE}/freeze", status_code=201)
async def freeze_stored_value(
    customer_id: CustomerId,
    body: FreezeRequest,
    key: IdempotencyKeyDep,
    tenant: TenantDep,
    actor: OperatorDep,
    service: StoredValueDep,
    response: Response,
) -> MovingView:
    """Stop spends and refunds (a dispute, a lost card). 409 `already_frozen`."""
    moving = await service.set_frozen(
        tenant, customer_id, True, reason=body.reason, operator=actor.id, key=key
    )
    return MovingView.of(moving, response)


@router.post(f"{BASE}/unfreeze", status_code=201)
async def unfreeze_stored_value(
    customer_id: CustomerId,
    body: FreezeRequest,
    key: IdempotencyKeyDep,
    tenant: TenantDep,
    actor: OperatorDep,
    service: StoredValueDep,
    response: Response,
) -> MovingView:
    moving = await service.set_frozen(
        tenant, customer_id, False, reason=body.reason, operator=actor.id, key=key
    )
    return MovingView.of(moving, response)
