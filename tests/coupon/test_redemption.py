"""Redemption at checkout: quote, lock, confirm, release, refund; never used twice; locks
expire; the subsidy is charged to the budget; return coupons follow a paid order; the
customer service's order events drive it all too."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from contracts import Envelope, Topic
from contracts.customer import (
    OrderCancelled,
    OrderLine,
    OrderPaid,
    OrderRefunded,
    RefundedLine,
)
from tests.coupon.support import Service, batch_spec, claim, ok, running_batches
from tests.support.waiting import eventually

LOCK_SECONDS = 2


@pytest.fixture(scope="module")
def overrides() -> dict[str, Any]:
    return {"lock_seconds": LOCK_SECONDS, "lock_sweep_seconds": 0.2}


def order(order_id: str, *lines: dict[str, Any], shipping_fee: int = 0) -> dict[str, Any]:
    default = {"line_id": "1", "product_id": "p-1", "category": "shoes", "price": 12_000}
    return {
        "order_id": order_id,
        "lines": [{"quantity": 1, **default, **line} for line in lines]
        or [{"quantity": 1, **default}],
        "shipping_fee": shipping_fee,
    }


async def lock(api: httpx.AsyncClient, coupon_id: str, customer: str, body: dict) -> httpx.Response:
    return await api.post(
        f"/coupons/{coupon_id}/lock", json={"customer_id": customer, "order": body}
    )


async def campaign_of(api: httpx.AsyncClient, batch_id: str) -> dict[str, Any]:
    batch = await ok(api.get(f"/batches/{batch_id}"))
    return await ok(api.get(f"/campaigns/{batch['batch']['campaign_id']}"))


async def test_a_quote_lists_applicable_coupons_best_first_and_why_others_do_not_apply(
    api: httpx.AsyncClient,
) -> None:
    ids = await running_batches(
        api,
        batch_spec("ten", discount={"kind": "threshold", "amount": 1_000, "threshold": 10_000}),
        batch_spec("pct", discount={"kind": "percent", "pay_percent": 80, "cap": 5_000}),
        batch_spec("big", discount={"kind": "threshold", "amount": 3_000, "threshold": 50_000}),
        batch_spec(
            "bags",
            scope={"kind": "categories", "categories": ["bags"]},
            discount={"kind": "direct", "amount": 500, "threshold": 2_000},
        ),
        batch_spec("ship", scope={"kind": "shipping"}, discount={"kind": "direct", "amount": 800}),
        batch_spec("merchant", platform={"kind": "merchant", "merchant_id": "m-9"}),
    )
    coupons = {k: (await ok(claim(api, b, "cus_q"), 201))["id"] for k, b in ids.items()}
    quote = await ok(api.post("/customers/cus_q/quote", json=order("o-1", shipping_fee=600)))
    applicable = [(o["coupon_id"], o["discount"]) for o in quote["applicable"]]
    assert applicable == [(coupons["pct"], 2_400), (coupons["ten"], 1_000), (coupons["ship"], 600)]
    reasons = {o["coupon_id"]: o["reason"] for o in quote["not_applicable"]}
    assert reasons == {
        coupons["big"]: "below_threshold",
        coupons["bags"]: "no_eligible_items",
        coupons["merchant"]: "no_eligible_items",
    }


async def test_lock_confirm_charges_the_budget_once_and_a_coupon_is_never_used_twice(
    api: httpx.AsyncClient,
) -> None:
    ids = await running_batches(api, batch_spec(stock=10))
    coupon = await ok(claim(api, ids["main"], "cus_r"), 201)
    # Ten orders race to lock the one coupon: exactly one wins.
    answers = await asyncio.gather(
        *(lock(api, coupon["id"], "cus_r", order(f"o-{n}")) for n in range(10))
    )
    winners = [r for r in answers if r.status_code == 200]
    assert len(winners) == 1
    assert {r.json()["code"] for r in answers if r.status_code != 200} == {"coupon_not_available"}
    order_id = winners[0].json()["lock"]["order_id"]
    again = await lock(api, coupon["id"], "cus_r", order(order_id))
    assert again.status_code == 200  # the same lock again
    confirmed = await asyncio.gather(*(api.post(f"/orders/{order_id}/confirm") for _ in range(5)))
    assert {r.status_code for r in confirmed} == {200}
    assert {r.json()["state"] for r in confirmed} == {"used"}
    assert confirmed[0].json()["discount"] == 1_000
    reuse = await lock(api, coupon["id"], "cus_r", order("o-other"))
    assert reuse.status_code == 409
    campaign = await campaign_of(api, ids["main"])
    assert (campaign["consumed"], campaign["reserved"]) == (1_000, 9_000)
    ledger = await ok(api.get(f"/budgets/{campaign['budget_id']}/ledger"))
    assert [e["movement"] for e in ledger["entries"]].count("consume") == 1
    assert ledger["explained"] is True


async def test_one_coupon_per_order(api: httpx.AsyncClient) -> None:
    ids = await running_batches(api, batch_spec("a"), batch_spec("b"))
    first = await ok(claim(api, ids["a"], "cus_o"), 201)
    second = await ok(claim(api, ids["b"], "cus_o"), 201)
    await ok(lock(api, first["id"], "cus_o", order("o-one")))
    refused = await lock(api, second["id"], "cus_o", order("o-one"))
    assert (refused.status_code, refused.json()["code"]) == (409, "order_has_coupon")
    not_mine = await lock(api, second["id"], "cus_other", order("o-two"))
    assert not_mine.status_code == 404


async def test_a_lock_expires_when_the_order_is_not_paid_and_release_frees_it(
    api: httpx.AsyncClient,
) -> None:
    ids = await running_batches(api, batch_spec())
    coupon = await ok(claim(api, ids["main"], "cus_l"), 201)
    assert (await ok(lock(api, coupon["id"], "cus_l", order("o-slow"))))["state"] == "locked"

    async def state() -> str:
        return (await ok(api.get(f"/coupons/{coupon['id']}")))["state"]

    stored = lambda: api.get(f"/coupons/{coupon['id']}")  # noqa: E731
    await eventually(state, until=lambda s: s == "available", within=LOCK_SECONDS + 5)
    await eventually(
        lambda: _stored_state(stored), until=lambda s: s == "available", within=10
    )  # the sweep, not only the view
    await ok(lock(api, coupon["id"], "cus_l", order("o-next")))
    released = await ok(api.post("/orders/o-next/release"))
    assert released["coupon"]["state"] == "available"
    assert (await ok(api.post("/orders/o-next/release")))["coupon"] is None


async def _stored_state(get: Any) -> str:
    response = await get()
    return response.json()["state"]


async def test_a_refund_gives_the_coupon_back_and_the_subsidy_back_to_the_reservation(
    api: httpx.AsyncClient,
) -> None:
    ids = await running_batches(
        api, batch_spec("keeps", return_on_refund=False), batch_spec("main")
    )
    coupon = await ok(claim(api, ids["main"], "cus_f"), 201)
    await ok(lock(api, coupon["id"], "cus_f", order("o-ref")))
    await ok(api.post("/orders/o-ref/confirm"))
    refunded = await ok(api.post("/orders/o-ref/refund"))
    assert refunded["restored"] is True and refunded["coupon"]["state"] == "available"
    assert (await ok(api.post("/orders/o-ref/refund")))["restored"] is False  # once
    campaign = await campaign_of(api, ids["main"])
    assert campaign["consumed"] == 0
    ledger = await ok(api.get(f"/budgets/{campaign['budget_id']}/ledger"))
    assert ledger["explained"] is True
    kept = await ok(claim(api, ids["keeps"], "cus_f"), 201)
    await ok(lock(api, kept["id"], "cus_f", order("o-kept")))
    await ok(api.post("/orders/o-kept/confirm"))
    answer = await ok(api.post("/orders/o-kept/refund"))
    assert (answer["restored"], answer["reason"]) == (False, "batch_keeps_used_coupons")


async def test_a_return_coupon_issues_its_follow_up_when_the_order_is_paid(
    api: httpx.AsyncClient,
) -> None:
    ids = await running_batches(
        api,
        batch_spec(
            "spend",
            discount={
                "kind": "return",
                "amount": 2_000,
                "threshold": 10_000,
                "follow_up_batch": "back",
            },
        ),
        batch_spec("back", discount={"kind": "threshold", "amount": 2_000, "threshold": 20_000}),
    )
    coupon = await ok(claim(api, ids["spend"], "cus_ret"), 201)
    quote = await ok(api.post("/customers/cus_ret/quote", json=order("o-ret")))
    assert quote["applicable"][0]["returns"] == 2_000
    await ok(lock(api, coupon["id"], "cus_ret", order("o-ret")))
    await ok(api.post("/orders/o-ret/confirm"))
    await ok(api.post("/orders/o-ret/confirm"))
    wallet = await ok(api.get("/customers/cus_ret/coupons"))
    follow_ups = [c for c in wallet["items"] if c["batch_id"] == ids["back"]]
    assert len(follow_ups) == 1 and follow_ups[0]["channel"] == "order_return"


async def publish(service: Service, tenant: str, *events: Any) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=service.bootstrap)
    await producer.start()
    try:
        for event in events:
            envelope = Envelope(
                type=event.type,
                source="/tests",
                subject=event.customer_id,
                tenant=tenant,
                data=event.model_dump(mode="json"),
            )
            await producer.send_and_wait(
                str(Topic.CUSTOMER), envelope.to_bytes(), key=event.customer_id.encode()
            )
    finally:
        await producer.stop()


async def test_order_events_confirm_refund_and_release_and_count_paid_orders(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    ids = await running_batches(
        api, batch_spec("main"), batch_spec("newbies", audience="new_customers")
    )
    paid_coupon = await ok(claim(api, ids["main"], "cus_e"), 201)
    cancelled_coupon = await ok(claim(api, ids["main"], "cus_c"), 201)
    two_lines = order(
        "o-ev", {"line_id": "1"}, {"line_id": "2", "product_id": "p-2", "price": 6_000}
    )
    await ok(lock(api, paid_coupon["id"], "cus_e", two_lines))
    await ok(lock(api, cancelled_coupon["id"], "cus_c", order("o-cx")))
    at = datetime.now(UTC)
    line = OrderLine(line_id="1", sku="p-1", quantity=1, amount=12_000)
    paid = OrderPaid(
        customer_id="cus_e",
        order_id="o-ev",
        amount=12_000,
        currency="CNY",
        lines=[line],
        coupon_ids=[paid_coupon["id"]],
        first_order=True,
        paid_at=at,
    )
    cancelled = OrderCancelled(
        customer_id="cus_c", order_id="o-cx", was_paid=False, cancelled_at=at
    )
    await publish(service, tenant, paid, paid, cancelled)

    async def state(coupon_id: str) -> str:
        return (await ok(api.get(f"/coupons/{coupon_id}")))["state"]

    await eventually(lambda: state(paid_coupon["id"]), until=lambda s: s == "used", within=40)
    await eventually(lambda: state(cancelled_coupon["id"]), until=lambda s: s == "available")
    refused = await claim(api, ids["newbies"], "cus_e")
    assert (refused.status_code, refused.json()["code"]) == (409, "not_new_customer")
    assert (await claim(api, ids["newbies"], "cus_c")).status_code == 201
    # A partial refund (line 2 of 120 + 60) gives back its share of the 10 off: 3.33.
    partial = OrderRefunded(
        customer_id="cus_e",
        order_id="o-ev",
        refund_id="r-0",
        amount=6_000,
        lines=[RefundedLine(line_id="2", quantity=1, amount=6_000)],
        fully_refunded=False,
        refunded_at=at,
    )
    await publish(service, tenant, partial)

    async def consumed() -> int:
        return (await campaign_of(api, ids["main"]))["consumed"]

    await eventually(consumed, until=lambda c: c == 667, within=20)
    assert await state(paid_coupon["id"]) == "used"
    refund = OrderRefunded(
        customer_id="cus_e",
        order_id="o-ev",
        refund_id="r-1",
        amount=12_000,
        lines=[],
        fully_refunded=True,
        refunded_at=at,
    )
    await publish(service, tenant, refund)
    await eventually(lambda: state(paid_coupon["id"]), until=lambda s: s == "available")
    campaign = await campaign_of(api, ids["main"])
    assert campaign["consumed"] == 0


async def test_the_wallet_lists_by_state_as_of_now_page_by_page(api: httpx.AsyncClient) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=2)
    window = {
        "valid_from": (soon - timedelta(hours=1)).isoformat(),
        "valid_until": soon.isoformat(),
    }
    ids = await running_batches(api, batch_spec("short", validity=window), batch_spec("long"))
    short = await ok(claim(api, ids["short"], "cus_w"), 201)
    long = await ok(claim(api, ids["long"], "cus_w"), 201)
    await ok(lock(api, long["id"], "cus_w", order("o-wallet")))

    async def listed(state: str) -> list[str]:
        page = await ok(api.get("/customers/cus_w/coupons", params={"state": state}))
        return [c["id"] for c in page["items"]]

    assert await listed("locked") == [long["id"]]
    assert await eventually(lambda: listed("expired"), until=lambda got: got == [short["id"]])
    assert await listed("available") == []
    first = await ok(api.get("/customers/cus_w/coupons", params={"limit": 1}))
    second = await ok(
        api.get("/customers/cus_w/coupons", params={"limit": 1, "cursor": first["next_cursor"]})
    )
    assert {first["items"][0]["id"], second["items"][0]["id"]} == {short["id"], long["id"]}
    assert second["next_cursor"] is None
