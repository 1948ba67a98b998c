"""Exchanging points for a coupon (the coupon service grants it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response, status
from pydantic import BaseModel, ConfigDict

from servicekit.context import TenantDep
from servicekit.errors import Conflict
from servicekit.runtime import RuntimeDep
from services.loyalty.api.deps import CustomerId, IdempotencyKeyDep
from services.loyalty.domain.exchanges import Exchange, ExchangeState
from services.loyalty.domain.values import ExternalId, Points
from services.loyalty.service.exchanges import ExchangeService

router = APIRouter(tags=["points"])


async def exchange_service(runtime: RuntimeDep) -> ExchangeService:
    return ExchangeService(runtime.uow, runtime.state["coupons"])


ExchangesDep = Annotated[ExchangeService, Depends(exchange_service)]


class ExchangeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batch_id: ExternalId
    points: Points


@router.post("/customers/{customer_id}/points/coupon-exchanges", status_code=201)
async def exchange_points_for_coupon(
    customer_id: CustomerId,
    body: ExchangeRequest,
    key: IdempotencyKeyDep,
    tenant: TenantDep,
    exchanges: ExchangesDep,
    response: Response,
) -> Exchange:
    """Spend points on a coupon of `batch_id`. 201 `granted` with the `coupon_id`. 409
    `coupon_refused` (the coupon service's reason in `coupon_code`) after the points are
    restored. 202 `debited` when the coupon service gave no answer: the exchange is asked
    again (send the same request, or the sweep does) until it is granted or refused.
    422 `insufficient_points` debits nothing."""
    exchange = await exchanges.exchange(
        tenant, customer_id, batch_id=body.batch_id, points=body.points, key=key
    )
    if exchange.state == ExchangeState.REFUSED:
        raise Conflict(
            f"the coupon service refused ({exchange.refusal_code}); the points are restored",
            code="coupon_refused",
            coupon_code=exchange.refusal_code,
            exchange_id=exchange.exchange_id,
        )
    if exchange.state == ExchangeState.DEBITED:
        response.status_code = status.HTTP_202_ACCEPTED
    return exchange


@router.get("/customers/{customer_id}/points/coupon-exchanges/{exchange_id}")
async def get_coupon_exchange(
    customer_id: CustomerId,
    exchange_id: Annotated[str, Path(pattern=r"^ex_[0-9a-f]{32}$")],
    tenant: TenantDep,
    exchanges: ExchangesDep,
) -> Exchange:
    """An exchange as it stands: `debited` (waiting for the coupon service), `granted`
    (with the `coupon_id`) or `refused` (with the coupon service's `refusal_code`)."""
    return await exchanges.by_id(tenant, customer_id, exchange_id)
