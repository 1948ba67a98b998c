"""Order routes: what the brand's commerce systems report (paid, refunded, cancelled), the
orders of a customer, and their purchase statistics (交易行为统计)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response, status

from servicekit.context import TenantDep
from servicekit.pagination import Page, PageRequestDep
from servicekit.runtime import RuntimeDep
from services.customer.domain.orders import CancelReport, Order, PaidReport, RefundReport
from services.customer.domain.purchase_stats import PurchaseSummary
from services.customer.domain.values import CUSTOMER_ID_PATTERN, EXTERNAL_ID_PATTERN
from services.customer.service.orders import OrderService, Reported
from services.customer.store.customers import CustomerStore
from services.customer.store.orders import OrderStore, PurchaseStatsStore

router = APIRouter(tags=["orders"])
CustomerId = Annotated[str, Path(pattern=CUSTOMER_ID_PATTERN)]
OrderId = Annotated[str, Path(pattern=EXTERNAL_ID_PATTERN)]


async def order_service(runtime: RuntimeDep) -> OrderService:
    return OrderService(
        runtime.uow,
        OrderStore(runtime.db),
        PurchaseStatsStore(runtime.db),
        CustomerStore(runtime.db, runtime.state.get("vault")),
    )


OrdersDep = Annotated[OrderService, Depends(order_service)]


@router.post("/orders/paid", status_code=status.HTTP_201_CREATED)
async def report_order_paid(
    body: PaidReport, tenant: TenantDep, orders: OrdersDep, response: Response
) -> Order:
    """A commerce system reports an order paid. Its line amounts must add up to `amount`
    (minor units, 分). Publishes `customer.order_paid.v1` (with `first_order` on the
    customer's first) and `customer.purchase_stats_changed.v1`; a first order also makes a
    lead or prospect a customer.

    Idempotent by `order_id`: 201 the first time; 200 with the order as it stands for the
    same report again (nothing changes); 409 `order_conflict` naming the differing fields
    for another report under the same id; 409 `order_cancelled` if it was cancelled unpaid.
    """
    return _answer(await orders.report_paid(tenant, body), response)


@router.post("/orders/{order_id}/refunds", status_code=status.HTTP_201_CREATED)
async def report_order_refunded(
    order_id: OrderId, body: RefundReport, tenant: TenantDep, orders: OrdersDep, response: Response
) -> Order:
    """(Part of) a paid order refunded, line by line. Per line, the quantity and amount
    refunded over all refunds never exceed what was paid (422 `refund_exceeds_paid`).
    Publishes `customer.order_refunded.v1` and `customer.purchase_stats_changed.v1`.

    Idempotent by `refund_id` within the order: 201 the first time, 200 for the same refund
    again, 409 `refund_conflict` for a different one under the same id."""
    return _answer(await orders.report_refund(tenant, order_id, body), response)


@router.post("/orders/{order_id}/cancel")
async def report_order_cancelled(
    order_id: OrderId, body: CancelReport, tenant: TenantDep, orders: OrdersDep
) -> Order:
    """An order cancelled. A paid one is voided: it leaves the customer's statistics with
    whatever was refunded of it. One never reported paid is recorded as cancelled (give
    `customer_id`), so a late paid report for it is refused. Publishes
    `customer.order_cancelled.v1` (and `customer.purchase_stats_changed.v1` after a void).
    Cancelling again answers the same."""
    order, _ = await orders.report_cancel(tenant, order_id, body)
    return order


@router.get("/orders/{order_id}")
async def get_order(order_id: OrderId, tenant: TenantDep, orders: OrdersDep) -> Order:
    return await orders.get(tenant, order_id)


@router.get("/customers/{customer_id}/orders")
async def list_customer_orders(
    customer_id: CustomerId, tenant: TenantDep, orders: OrdersDep, page: PageRequestDep
) -> Page[Order]:
    """A customer's orders, newest first (by payment, or cancellation if never paid)."""
    items, cursor = await orders.page_for_customer(tenant, customer_id, page)
    return Page(items=items, next_cursor=cursor)


@router.get("/customers/{customer_id}/purchase-stats")
async def get_purchase_stats(
    customer_id: CustomerId, tenant: TenantDep, orders: OrdersDep
) -> PurchaseSummary:
    """Order count, totals paid and refunded, net amount, average order value, first and
    last purchase, purchase frequency (orders per 30 days), refund rate and RFM inputs.
    Amounts in minor units (分); voided orders are not counted, refunded ones are."""
    return await orders.purchase_stats(tenant, customer_id)


def _answer(reported: Reported, response: Response) -> Order:
    order, changed = reported
    if not changed:
        response.status_code = status.HTTP_200_OK
    return order
