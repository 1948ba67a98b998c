"""Orders reported by commerce systems, over real HTTP on the real embedded store and
broker: paid, refunded in part (never beyond what was paid per line, also under concurrent
refunds), cancelled; idempotent re-reports and the 409 conflict; purchase statistics exact
under 20 concurrent orders of one customer and 10 concurrent copies of one report; the first
order makes a lead a customer; every event published valid against the contracts."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from contracts import Envelope
from servicekit.errors import PROBLEM_JSON
from servicekit.outbox import outbox_events
from tests.customer.support import Service
from tests.support.events import published
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
PAID = "customer.order_paid.v1"
REFUNDED = "customer.order_refunded.v1"
CANCELLED = "customer.order_cancelled.v1"
STATS = "customer.purchase_stats_changed.v1"
STAGE = "customer.lifecycle_stage_changed.v1"


def at(hours_ago: float) -> str:
    moment = datetime.now(UTC) - timedelta(hours=hours_ago)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000).isoformat()


def paid_body(customer_id: str, order_id: str = "SO-1", **overrides: Any) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "customer_id": customer_id,
        "amount": 15_000,
        "lines": [
            {"line_id": "L1", "sku": "TEA-1", "category": "tea", "quantity": 2, "amount": 10_000},
            {"line_id": "L2", "sku": "CUP-1", "quantity": 1, "amount": 5_000},
        ],
        "channel": "mini_program",
        "store_id": "SH-001",
        "coupon_ids": ["CP-9"],
        "paid_at": at(2),
        **overrides,
    }


def one_line(amount: int) -> dict[str, Any]:
    return {
        "amount": amount,
        "lines": [{"line_id": "L", "sku": "S", "quantity": 1, "amount": amount}],
    }


def refund_body(refund_id: str, *lines: tuple[str, int, int]) -> dict[str, Any]:
    return {
        "refund_id": refund_id,
        "lines": [{"line_id": i, "quantity": q, "amount": a} for i, q, a in lines],
        "refunded_at": at(1),
    }


async def register(api: httpx.AsyncClient) -> str:
    response = await api.post(
        "/customers", json={"display_name": "Li Lei", "source_channel": "store"}
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def pay(api: httpx.AsyncClient, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    response = await api.post("/orders/paid", json=body)
    assert response.status_code == status, response.text
    return response.json()


async def stats(api: httpx.AsyncClient, customer: str) -> dict[str, Any]:
    response = await api.get(f"/customers/{customer}/purchase-stats")
    assert response.status_code == 200, response.text
    return response.json()


async def outbox_types(db: AsyncDatabase[Any], tenant: str) -> Counter[str]:
    return Counter(e["type"] for e in await outbox_events(db, tenant=tenant))


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    if code is not None:
        assert body["code"] == code, body
    return body


async def events_of(service: Service, tenant: str, **least: int) -> list[Envelope]:
    """The tenant's published events once at least `least[type]` of each are there, each
    validated against its contract on the way."""

    def enough(envelopes: list[Envelope]) -> bool:
        counts = Counter(e.type.removeprefix("customer.").removesuffix(".v1") for e in envelopes)
        return all(counts[t] >= n for t, n in least.items())

    return await eventually(
        lambda: published(service.settings.kafka_bootstrap_servers, tenant=tenant),
        until=enough,
    )


# ------------------------------------------------------------------------------ paid


async def test_a_first_paid_order_counts_makes_a_lead_a_customer_and_is_published(
    api: httpx.AsyncClient, tenant: str, service: Service
) -> None:
    customer = await register(api)
    order = await pay(api, paid_body(customer))
    assert (order["status"], order["first_order"], order["amount"]) == ("paid", True, 15_000)
    assert (await api.get(f"/orders/{order['order_id']}")).json() == order

    second = await pay(api, paid_body(customer, "SO-2", **one_line(5_000), paid_at=at(1)))
    assert second["first_order"] is False

    figures = await stats(api, customer)
    assert (figures["order_count"], figures["total_paid"], figures["net_amount"]) == (
        2,
        20_000,
        20_000,
    )
    assert figures["average_order_value"] == 10_000 and figures["purchase_frequency"] == 2.0
    assert figures["first_purchase_at"] == order["paid_at"].replace("+00:00", "Z")
    assert figures["rfm"] == {"recency_days": 0, "frequency": 2, "monetary": 20_000}
    profile = (await api.get(f"/customers/{customer}")).json()
    assert profile["lifecycle_stage"] == "customer"

    envelopes = await events_of(service, tenant, order_paid=2, purchase_stats_changed=2)
    paid = [e.data for e in envelopes if e.type == PAID]
    assert [(p["order_id"], p["first_order"]) for p in paid] == [("SO-1", True), ("SO-2", False)]
    assert paid[0]["lines"][0] == {
        "line_id": "L1",
        "sku": "TEA-1",
        "category": "tea",
        "quantity": 2,
        "amount": 10_000,
    }
    assert [e.data["order_count"] for e in envelopes if e.type == STATS] == [1, 2]
    [stage] = [e.data for e in envelopes if e.type == STAGE]
    assert (stage["from_stage"], stage["to_stage"], stage["reason"]) == (
        "lead",
        "customer",
        "first_order",
    )
    assert {e.subject for e in envelopes} == {customer}


async def test_the_same_report_again_answers_the_same_and_changes_nothing(
    api: httpx.AsyncClient, tenant: str, db: AsyncDatabase[Any]
) -> None:
    customer = await register(api)
    body = paid_body(customer)
    first = await pay(api, body)
    before = await outbox_types(db, tenant)
    assert await pay(api, body, status=200) == first
    assert await outbox_types(db, tenant) == before
    assert (await stats(api, customer))["order_count"] == 1


async def test_another_report_under_the_same_order_id_is_a_409_and_changes_nothing(
    api: httpx.AsyncClient, tenant: str, db: AsyncDatabase[Any]
) -> None:
    customer, other = await register(api), await register(api)
    original = paid_body(customer)
    await pay(api, original)
    before = await outbox_types(db, tenant)
    changed = {**original, **one_line(15_000)}
    problem = assert_problem(await api.post("/orders/paid", json=changed), 409, "order_conflict")
    assert problem["fields"] == ["lines"]
    someone_else = {**original, "customer_id": other}
    problem = assert_problem(await api.post("/orders/paid", json=someone_else), 409)
    assert problem["fields"] == ["customer_id"]
    assert await outbox_types(db, tenant) == before
    assert (await stats(api, customer))["total_paid"] == 15_000
    assert (await stats(api, other))["order_count"] == 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"amount": 14_999}, "amount"),
        ({"amount": -1}, "amount"),
        ({"amount": {"$gt": 0}}, "amount"),
        ({"customer_id": {"$ne": None}}, "customer_id"),
        ({"order_id": {"$ne": None}}, "order_id"),
        ({"paid_at": at(-3)}, "paid_at"),
        ({"paid_at": "2026-05-01T10:00:00"}, "paid_at"),
        ({"currency": "yuan"}, "currency"),
        ({"lines": []}, "lines"),
        (
            {"lines": [{"line_id": "L1", "sku": "S", "quantity": 0, "amount": 15_000}]},
            "lines.0.quantity",
        ),
        ({"tenant": "someone-else"}, "tenant"),
    ],
    ids=[
        "lines-do-not-add-up",
        "negative",
        "operator-amount",
        "operator-customer",
        "operator-order",
        "future",
        "naive-time",
        "currency",
        "no-lines",
        "zero-quantity",
        "tenant-in-body",
    ],
)
async def test_bad_paid_reports_are_refused_with_the_field_and_write_nothing(
    api: httpx.AsyncClient,
    tenant: str,
    db: AsyncDatabase[Any],
    overrides: dict[str, Any],
    field: str,
) -> None:
    customer = await register(api)
    body = {**paid_body(customer), **overrides}
    problem = assert_problem(await api.post("/orders/paid", json=body), 422)
    assert field in {e["field"] for e in problem["errors"]}, problem
    assert await db["orders"].count_documents({"tenant": tenant}) == 0
    assert await db["purchase_stats"].count_documents({"tenant": tenant}) == 0
    assert not (await outbox_types(db, tenant))[PAID]


async def test_orders_of_unknown_customers_are_404_and_write_nothing(
    api: httpx.AsyncClient, tenant: str, db: AsyncDatabase[Any]
) -> None:
    nobody = f"cus_{'0' * 32}"
    assert_problem(
        await api.post("/orders/paid", json=paid_body(nobody)), 404, "customer_not_found"
    )
    assert_problem(await api.get(f"/customers/{nobody}/purchase-stats"), 404, "customer_not_found")
    assert_problem(await api.get(f"/customers/{nobody}/orders"), 404, "customer_not_found")
    assert_problem(await api.get("/orders/SO-404"), 404, "order_not_found")
    assert await db["orders"].count_documents({"tenant": tenant}) == 0


async def test_another_currency_is_refused_rather_than_added_to_the_stats(
    api: httpx.AsyncClient,
) -> None:
    customer = await register(api)
    await pay(api, paid_body(customer))
    dollars = paid_body(customer, "SO-USD", currency="USD")
    assert_problem(await api.post("/orders/paid", json=dollars), 422, "currency_mismatch")
    assert_problem(await api.get("/orders/SO-USD"), 404)


# --------------------------------------------------------------------------- refunds


async def test_partial_refunds_add_up_per_line_and_never_exceed_what_was_paid(
    api: httpx.AsyncClient, tenant: str, service: Service
) -> None:
    customer = await register(api)
    await pay(api, paid_body(customer))

    r1 = refund_body("R1", ("L1", 1, 6_000))
    first = await api.post("/orders/SO-1/refunds", json=r1)
    assert first.status_code == 201, first.text
    assert (first.json()["status"], first.json()["refunded_amount"]) == (
        "partially_refunded",
        6_000,
    )

    too_much = await api.post("/orders/SO-1/refunds", json=refund_body("R2", ("L1", 1, 4_001)))
    problem = assert_problem(too_much, 422, "refund_exceeds_paid")
    assert problem["errors"][0]["field"] == "lines.0.amount"
    unknown = await api.post("/orders/SO-1/refunds", json=refund_body("R2", ("L9", 1, 1)))
    assert_problem(unknown, 422, "unknown_line")

    rest = refund_body("R2", ("L1", 1, 4_000), ("L2", 1, 5_000))
    done = await api.post("/orders/SO-1/refunds", json=rest)
    assert (done.json()["status"], done.json()["refunded_amount"]) == ("refunded", 15_000)

    again = await api.post("/orders/SO-1/refunds", json=r1)
    assert again.status_code == 200 and again.json() == done.json()
    conflict = await api.post("/orders/SO-1/refunds", json={**r1, "refunded_at": at(3)})
    assert_problem(conflict, 409, "refund_conflict")
    assert_problem(
        await api.post("/orders/SO-404/refunds", json=refund_body("R1", ("L1", 1, 1))),
        404,
        "order_not_found",
    )

    figures = await stats(api, customer)
    assert (figures["order_count"], figures["total_refunded"], figures["net_amount"]) == (
        1,
        15_000,
        0,
    )
    assert figures["refund_rate"] == 1.0

    envelopes = await events_of(service, tenant, order_refunded=2, purchase_stats_changed=3)
    refunds = [e.data for e in envelopes if e.type == REFUNDED]
    assert [(r["refund_id"], r["amount"], r["fully_refunded"]) for r in refunds] == [
        ("R1", 6_000, False),
        ("R2", 9_000, True),
    ]


async def test_concurrent_refunds_of_one_order_never_refund_more_than_was_paid(
    api: httpx.AsyncClient,
) -> None:
    customer = await register(api)
    await pay(api, paid_body(customer, **one_line(1_000)))
    responses = await asyncio.gather(
        *(
            api.post("/orders/SO-1/refunds", json=refund_body(f"R{i}", ("L", 0, 200)))
            for i in range(8)
        )
    )
    codes = Counter(r.status_code for r in responses)
    assert codes == {201: 5, 422: 3}, [r.text for r in responses]
    assert (await api.get("/orders/SO-1")).json()["refunded_amount"] == 1_000
    assert (await stats(api, customer))["total_refunded"] == 1_000


# ---------------------------------------------------------------------- cancellation


async def test_a_voided_order_leaves_the_stats_with_its_refunds(
    api: httpx.AsyncClient, tenant: str, service: Service
) -> None:
    customer = await register(api)
    early = await pay(api, paid_body(customer, "SO-A", **one_line(3_000), paid_at=at(30)))
    await pay(api, paid_body(customer, "SO-B", **one_line(7_000), paid_at=at(2)))
    await api.post("/orders/SO-B/refunds", json=refund_body("R1", ("L", 0, 1_000)))

    voided = await api.post("/orders/SO-B/cancel", json={"cancelled_at": at(1), "reason": "void"})
    assert voided.status_code == 200, voided.text
    assert (voided.json()["status"], voided.json()["cancel_reason"]) == ("cancelled", "void")
    again = await api.post("/orders/SO-B/cancel", json={"cancelled_at": at(0.5)})
    assert again.status_code == 200 and again.json() == voided.json()

    figures = await stats(api, customer)
    assert (figures["order_count"], figures["total_paid"], figures["total_refunded"]) == (
        1,
        3_000,
        0,
    )
    assert figures["last_purchase_at"] == early["paid_at"].replace("+00:00", "Z")
    refund = await api.post("/orders/SO-B/refunds", json=refund_body("R2", ("L", 0, 1)))
    assert_problem(refund, 409, "order_cancelled")

    envelopes = await events_of(service, tenant, order_cancelled=1, purchase_stats_changed=4)
    [cancelled] = [e.data for e in envelopes if e.type == CANCELLED]
    assert (cancelled["order_id"], cancelled["was_paid"]) == ("SO-B", True)
    assert [e.data["order_count"] for e in envelopes if e.type == STATS][-1] == 1


async def test_an_order_cancelled_before_payment_needs_its_customer_and_blocks_a_late_payment(
    api: httpx.AsyncClient, tenant: str, db: AsyncDatabase[Any]
) -> None:
    customer = await register(api)
    anonymous = await api.post("/orders/SO-X/cancel", json={"cancelled_at": at(1)})
    assert_problem(anonymous, 422, "customer_required")
    assert await db["orders"].count_documents({"tenant": tenant}) == 0

    cancelled = await api.post(
        "/orders/SO-X/cancel", json={"cancelled_at": at(1), "customer_id": customer}
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["paid_at"] is None
    late = await api.post("/orders/paid", json=paid_body(customer, "SO-X"))
    assert_problem(late, 409, "order_cancelled")
    figures = await stats(api, customer)
    assert figures["order_count"] == 0
    types = await outbox_types(db, tenant)
    assert (types[CANCELLED], types[STATS], types[PAID]) == (1, 0, 0)


# ----------------------------------------------------------------------- concurrency


async def test_twenty_concurrent_orders_of_one_customer_leave_exact_stats(
    api: httpx.AsyncClient, tenant: str, db: AsyncDatabase[Any]
) -> None:
    customer = await register(api)
    amounts = [100 * (i + 1) for i in range(20)]
    bodies = [
        paid_body(customer, f"SO-{i}", **one_line(a), paid_at=at(40 - i))
        for i, a in enumerate(amounts)
    ]
    responses = await asyncio.gather(*(api.post("/orders/paid", json=b) for b in bodies))
    assert [r.status_code for r in responses] == [201] * 20, [r.text for r in responses]
    assert sum(r.json()["first_order"] for r in responses) == 1

    figures = await stats(api, customer)
    assert (figures["order_count"], figures["total_paid"]) == (20, sum(amounts))
    assert figures["first_purchase_at"] == bodies[0]["paid_at"].replace("+00:00", "Z")
    assert figures["last_purchase_at"] == bodies[-1]["paid_at"].replace("+00:00", "Z")
    types = await outbox_types(db, tenant)
    assert (types[PAID], types[STATS], types[STAGE]) == (20, 20, 1)
    stored = await db["purchase_stats"].find_one({"tenant": tenant, "customer_id": customer})
    assert stored["version"] == 20


async def test_ten_concurrent_copies_of_one_report_are_counted_once(
    api: httpx.AsyncClient, tenant: str, db: AsyncDatabase[Any]
) -> None:
    customer = await register(api)
    body = paid_body(customer)
    responses = await asyncio.gather(*(api.post("/orders/paid", json=body) for _ in range(10)))
    assert sorted(r.status_code for r in responses) == [200] * 9 + [201], [
        r.text for r in responses
    ]
    assert len({r.text for r in responses}) == 1  # every copy answered the same
    figures = await stats(api, customer)
    assert (figures["order_count"], figures["total_paid"]) == (1, 15_000)
    types = await outbox_types(db, tenant)
    assert (types[PAID], types[STATS]) == (1, 1)


# ---------------------------------------------------------------------------- reading


async def test_a_customers_orders_are_listed_newest_first_by_cursor(
    api: httpx.AsyncClient,
) -> None:
    customer, other = await register(api), await register(api)
    for i in range(5):
        await pay(api, paid_body(customer, f"SO-{i}", paid_at=at(10 - i)))
    await pay(api, paid_body(other, "SO-other"))

    walked: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = (await api.get(f"/customers/{customer}/orders", params=params)).json()
        walked += [o["order_id"] for o in page["items"]]
        if not page["next_cursor"]:
            break
        params["cursor"] = page["next_cursor"]
    assert walked == ["SO-4", "SO-3", "SO-2", "SO-1", "SO-0"]
    bad = await api.get(f"/customers/{customer}/orders", params={"cursor": "garbage"})
    assert_problem(bad, 422)


async def test_a_customer_without_orders_has_empty_stats(api: httpx.AsyncClient) -> None:
    customer = await register(api)
    figures = await stats(api, customer)
    assert figures["order_count"] == 0 and figures["average_order_value"] is None
    assert figures["rfm"] == {"recency_days": None, "frequency": 0, "monetary": 0}
