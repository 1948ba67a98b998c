"""Compensation (赔付): coupons straight into the wallet within the policy's range; every
review threshold, review by approve or reject, idempotency, and the thresholds holding
under many concurrent requests."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from contracts import Topic
from servicekit.clock import utcnow
from services.coupon.domain.compensation_policy import Period
from services.coupon.store.compensation import tally_id
from tests.coupon.support import (
    Client,
    Service,
    batch_spec,
    claim,
    iso,
    now,
    ok,
    running_batches,
)
from tests.support.events import published
from tests.support.waiting import eventually

AGENT = {"X-Actor-Id": "agent-1"}
REVIEWER = {"X-Actor-Id": "reviewer-1", "X-Actor-Roles": "compensation_reviewer"}


GRANT_ONLY = {
    "claim_from": iso(now() - timedelta(days=2)),
    "claim_until": iso(now() - timedelta(seconds=1)),
}


def compensation_batches(**stock: int) -> list[dict[str, Any]]:
    """满50减5, 满100减10, 满200减20 and a random 2-8 yuan packet, 100 per customer; their
    claim window is over, so only grants (compensation) issue them."""
    shape = {"per_customer_limit": 100, "stock": 1_000, **GRANT_ONLY}
    return [
        batch_spec("five", discount={"kind": "threshold", "amount": 500, "threshold": 5_000},
                   **{**shape, "stock": stock.get("five", 1_000)}),
        batch_spec("ten", discount={"kind": "threshold", "amount": 1_000, "threshold": 10_000},
                   **shape),
        batch_spec("twenty", discount={"kind": "threshold", "amount": 2_000, "threshold": 20_000},
                   **shape),
        batch_spec("lucky", discount={"kind": "random", "min_amount": 200, "max_amount": 800,
                                      "threshold": 10_000}, **shape),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def overrides() -> dict[str, Any]:
    """A compensation left issuing is finished soon (the resume worker's test)."""
    return {"compensation_stall_seconds": 0.5, "compensation_resume_seconds": 0.2}


@pytest.fixture
async def agent(client: Client) -> AsyncIterator[httpx.AsyncClient]:
    async with client(AGENT) as opened:
        yield opened


@pytest.fixture
async def reviewer(client: Client) -> AsyncIterator[httpx.AsyncClient]:
    async with client(REVIEWER) as opened:
        yield opened


async def set_up(
    api: httpx.AsyncClient, reviewer: httpx.AsyncClient, **policy: Any
) -> dict[str, str]:
    """Running compensation batches and a policy over them: batch ids by key."""
    ids = await running_batches(api, *compensation_batches(**policy.pop("stock", {})))
    body = {
        "batch_ids": [ids["five"], ids["ten"], ids["twenty"], ids["lucky"]],
        "min_value": 200,
        "max_value": 2_000,
        **policy,
    }
    await ok(reviewer.put("/compensation-policy", json=body))
    return ids


def asking(customer: str, reference: str, value: int = 500, **fields: Any) -> dict[str, Any]:
    return {
        "customer_id": customer,
        "reason": "parcel arrived late",
        "value": value,
        "reference": reference,
        **fields,
    }


async def compensate(agent: httpx.AsyncClient, body: dict[str, Any], status: int) -> dict:
    return await ok(agent.post("/compensations", json=body), status)


async def test_the_policy_is_validated_set_by_reviewers_and_read_back(
    api: httpx.AsyncClient, agent: httpx.AsyncClient, reviewer: httpx.AsyncClient
) -> None:
    ids = await running_batches(api, *compensation_batches())
    missing = await agent.get("/compensation-policy")
    assert missing.status_code == 404 and missing.json()["code"] == "no_compensation_policy"
    good = {"batch_ids": [ids["five"], ids["ten"]], "min_value": 500, "max_value": 1_000}
    forbidden = await agent.put("/compensation-policy", json=good)
    assert forbidden.status_code == 403 and forbidden.json()["code"] == "not_reviewer"

    async def refused(body: dict[str, Any], code: str, field: str) -> None:
        response = await reviewer.put("/compensation-policy", json=body)
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["code"] == code and field in {e["field"] for e in problem["errors"]}

    await refused({**good, "batch_ids": [ids["five"], ids["twenty"]]}, "value_out_of_range",
                  "batch_ids.1")  # fmt: skip
    await refused({**good, "batch_ids": [ids["lucky"]]}, "value_out_of_range", "batch_ids.0")
    await refused({**good, "batch_ids": ["bat_nope"]}, "batch_not_found", "batch_ids.0")
    claimable = await running_batches(api, batch_spec("open", stock=10))
    await refused({**good, "batch_ids": [claimable["open"]]}, "batch_self_claimable",
                  "batch_ids.0")  # fmt: skip
    await refused({**good, "batch_ids": ["$bad"]}, "validation_failed", "batch_ids.0")
    await refused({**good, "min_value": 2_000}, "validation_failed", "max_value")
    await refused({**good, "review_abve": 500}, "validation_failed", "review_abve")
    await refused(
        {
            **good,
            "period_limits": [
                {"period": "day", "max_count": 1},
                {"period": "day", "max_amount": 9},
            ],
        },
        "validation_failed",
        "period_limits",
    )
    assert (await agent.get("/compensation-policy")).status_code == 404  # nothing was stored

    limits = [{"period": "day", "max_count": 3}, {"period": "month", "max_amount": 5_000}]
    stored = await ok(reviewer.put("/compensation-policy", json={**good, "period_limits": limits}))
    assert stored["updated_by"] == "reviewer-1"
    assert (await ok(agent.get("/compensation-policy")))["period_limits"] == [
        {"period": "day", "max_count": 3, "max_amount": None},
        {"period": "month", "max_count": None, "max_amount": 5_000},
    ]
    assert (await agent.delete("/compensation-policy")).status_code == 403
    assert (await reviewer.delete("/compensation-policy")).status_code == 204
    stopped = await agent.post("/compensations", json=asking("cus_1", "after-stop"))
    assert stopped.status_code == 404 and stopped.json()["code"] == "no_compensation_policy"


async def test_within_thresholds_the_coupon_is_in_the_wallet_at_once_and_idempotent(
    api: httpx.AsyncClient, agent: httpx.AsyncClient, reviewer: httpx.AsyncClient
) -> None:
    ids = await set_up(api, reviewer, review_above=1_000)
    issued = await compensate(agent, asking("cus_1", "ticket-1", order_id="ord_1"), 201)
    assert (issued["state"], issued["batch_id"], issued["value"]) == ("issued", ids["five"], 500)
    assert issued["requested_by"] == "agent-1" and issued["exceeded"] == []
    wallet = await ok(api.get("/customers/cus_1/coupons"))
    [coupon] = wallet["items"]
    assert coupon["id"] == issued["coupon_id"] and coupon["channel"] == "compensation"
    assert coupon["reference"] == issued["id"] and coupon["face_value"] == 500

    again = await compensate(agent, asking("cus_1", "ticket-1", order_id="ord_1"), 201)
    assert again == issued
    reused = await agent.post("/compensations", json=asking("cus_2", "ticket-1"))
    assert reused.status_code == 409 and reused.json()["code"] == "reference_reused"

    self_claim = await claim(api, ids["five"], "cus_9")
    assert self_claim.status_code == 409 and self_claim.json()["code"] == "claim_closed"
    by_batch = await compensate(agent, {**asking("cus_1", "ticket-2"), "value": None,
                                        "batch_id": ids["lucky"]}, 201)  # fmt: skip
    assert 200 <= by_batch["value"] <= 800  # the drawn face value, not the most it could be
    assert len((await ok(api.get("/customers/cus_1/coupons")))["items"]) == 2


async def test_every_review_threshold_holds_the_request_and_says_which(
    api: httpx.AsyncClient, agent: httpx.AsyncClient, reviewer: httpx.AsyncClient
) -> None:
    limits = [{"period": "day", "max_count": 3}, {"period": "month", "max_amount": 2_000}]
    await set_up(api, reviewer, review_above=1_000, period_limits=limits)

    for n in range(3):  # the day's count
        await compensate(agent, asking("cus_a", f"a{n}"), 201)
    held = await compensate(agent, asking("cus_a", "a3"), 202)
    assert held["state"] == "pending_review" and held["coupon_id"] is None
    assert held["exceeded"] == [
        {"threshold": "period_count", "period": "day", "limit": 3, "current": 3}
    ]

    for n in range(2):  # the month's amount
        await compensate(agent, asking("cus_b", f"b{n}", 1_000), 201)
    held = await compensate(agent, asking("cus_b", "b2", 500), 202)
    assert held["exceeded"] == [
        {"threshold": "period_amount", "period": "month", "limit": 2_000, "current": 2_000}
    ]

    held = await compensate(agent, asking("cus_c", "c0", 2_000), 202)  # one coupon's value
    assert held["exceeded"] == [
        {"threshold": "single_value", "period": None, "limit": 1_000, "current": None}
    ]

    await compensate(agent, asking("cus_d", "d0", order_id="ord_9"), 201)  # the same order
    held = await compensate(agent, asking("cus_d", "d1", order_id="ord_9"), 202)
    assert [e["threshold"] for e in held["exceeded"]] == ["same_order"]

    wallets = {c: await ok(api.get(f"/customers/{c}/coupons")) for c in ("cus_a", "cus_c")}
    assert len(wallets["cus_a"]["items"]) == 3 and wallets["cus_c"]["items"] == []


async def test_reviewers_approve_or_reject_with_a_reason_recording_who_and_when(
    api: httpx.AsyncClient,
    agent: httpx.AsyncClient,
    reviewer: httpx.AsyncClient,
    service: Service,
    tenant: str,
) -> None:
    await set_up(api, reviewer, review_above=1_000, period_limits=[
        {"period": "week", "max_count": 1}])  # fmt: skip
    first = await compensate(agent, asking("cus_1", "t1", 2_000), 202)
    second = await compensate(agent, asking("cus_1", "t2", 1_000), 201)
    third = await compensate(agent, asking("cus_1", "t3", 1_000), 202)
    assert [e["threshold"] for e in first["exceeded"]] == ["single_value"]

    queue = await ok(reviewer.get("/compensations", params={"state": "pending_review"}))
    assert [c["id"] for c in queue["items"]] == [third["id"], first["id"]]
    by_customer = await ok(reviewer.get("/compensations", params={"customer_id": "cus_1"}))
    assert len(by_customer["items"]) == 3 and second["id"] in {
        c["id"] for c in by_customer["items"]
    }
    page = await ok(reviewer.get("/compensations", params={"limit": 2}))
    rest = await ok(reviewer.get("/compensations", params={"cursor": page["next_cursor"]}))
    assert len(page["items"]) == 2 and len(rest["items"]) == 1 and rest["next_cursor"] is None

    denied = await agent.post(f"/compensations/{first['id']}/approve")
    assert denied.status_code == 403 and denied.json()["code"] == "not_reviewer"
    approved = await ok(reviewer.post(f"/compensations/{first['id']}/approve",
                                      json={"note": "VIP, checked"}))  # fmt: skip
    assert approved["state"] == "issued" and approved["reviewed_by"] == "reviewer-1"
    assert approved["reviewed_at"] and approved["review_note"] == "VIP, checked"
    wallet = await ok(api.get("/customers/cus_1/coupons"))
    assert approved["coupon_id"] in {c["id"] for c in wallet["items"]}

    no_reason = await reviewer.post(f"/compensations/{third['id']}/reject", json={})
    assert no_reason.status_code == 422 and no_reason.json()["errors"][0]["field"] == "reason"
    assert (await ok(api.get(f"/compensations/{third['id']}")))["state"] == "pending_review"
    reason = {"reason": "already compensated this week"}
    rejected = await ok(reviewer.post(f"/compensations/{third['id']}/reject", json=reason))
    assert (rejected["state"], rejected["review_note"]) == ("rejected", reason["reason"])
    twice = await reviewer.post(f"/compensations/{third['id']}/approve")
    assert twice.status_code == 409 and twice.json()["code"] == "compensation_state"
    assert len((await ok(api.get("/customers/cus_1/coupons")))["items"]) == 2

    own = await compensate(reviewer, asking("cus_2", "t4", 2_000), 202)
    refused = await reviewer.post(f"/compensations/{own['id']}/approve")
    assert refused.status_code == 403 and refused.json()["code"] == "own_request"

    async def held_events() -> list[Any]:
        envelopes = await published(service.bootstrap, tenant=tenant, topic=Topic.COUPON)
        return [e for e in envelopes if e.type == "coupon.compensation_held.v1"]

    events = await eventually(held_events, until=lambda found: len(found) == 3)
    assert {e.data["compensation_id"] for e in events} == {first["id"], third["id"], own["id"]}


async def test_an_approved_count_counts_and_a_refused_issue_leaves_nothing_behind(
    api: httpx.AsyncClient, agent: httpx.AsyncClient, reviewer: httpx.AsyncClient
) -> None:
    await set_up(api, reviewer, stock={"five": 1}, period_limits=[
        {"period": "day", "max_count": 2}])  # fmt: skip
    await compensate(agent, asking("cus_1", "t1"), 201)  # the one 5-yuan coupon
    sold_out = await agent.post("/compensations", json=asking("cus_1", "t2"))
    assert sold_out.status_code == 409 and sold_out.json()["code"] == "sold_out"
    missing = await agent.get("/compensations", params={"customer_id": "cus_1"})
    assert len(missing.json()["items"]) == 1  # the refused request left nothing
    # ... and did not count: one more fits the day's two.
    await compensate(agent, asking("cus_1", "t3", 1_000), 201)
    held = await compensate(agent, asking("cus_1", "t4"), 202)
    refused = await reviewer.post(f"/compensations/{held['id']}/approve")
    assert refused.status_code == 409 and refused.json()["code"] == "sold_out"
    after = await ok(api.get(f"/compensations/{held['id']}"))
    assert (after["state"], after["issue_refusal"]) == ("pending_review", "sold_out")
    # the count the approval took was given back: cus_1 still holds two today
    again = await compensate(agent, asking("cus_1", "t5", 1_000), 202)
    assert again["exceeded"][0]["current"] == 2


async def test_bad_requests_are_clear_problems_and_change_nothing(
    api: httpx.AsyncClient, agent: httpx.AsyncClient, reviewer: httpx.AsyncClient
) -> None:
    no_policy = await agent.post("/compensations", json=asking("cus_1", "x0"))
    assert no_policy.status_code == 404 and no_policy.json()["code"] == "no_compensation_policy"
    ids = await set_up(api, reviewer)
    other = await running_batches(api, batch_spec())

    async def refused(body: dict[str, Any], code: str, fields: set[str]) -> None:
        response = await agent.post("/compensations", json=body)
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["code"] == code and fields <= {e["field"] for e in problem["errors"]}

    await refused({"customer_id": "cus_1", "value": 500}, "validation_failed",
                  {"reason", "reference"})  # fmt: skip
    await refused(asking("cus_1", "x1", batch_id=ids["five"]), "validation_failed", {"batch_id"})
    await refused(asking({"$gt": ""}, "x2"), "validation_failed", {"customer_id"})
    await refused(asking("cus_1", "x3", 5_000), "value_out_of_range", {"value"})
    await refused(asking("cus_1", "x4", 700), "value_not_offered", {"value"})
    await refused({**asking("cus_1", "x5"), "value": None, "batch_id": other["main"]},
                  "batch_not_allowed", {"batch_id"})  # fmt: skip
    assert (await ok(agent.get("/compensations")))["items"] == []
    assert (await ok(api.get("/customers/cus_1/coupons")))["items"] == []
    bad_state = await agent.get("/compensations", params={"state": "lost"})
    assert bad_state.status_code == 422


async def test_twenty_concurrent_requests_with_a_daily_count_of_five_issue_exactly_five(
    api: httpx.AsyncClient, agent: httpx.AsyncClient, reviewer: httpx.AsyncClient
) -> None:
    await set_up(api, reviewer, period_limits=[{"period": "day", "max_count": 5}])
    answers = await asyncio.gather(
        *(agent.post("/compensations", json=asking("cus_1", f"r{n}")) for n in range(20))
    )
    assert Counter(r.status_code for r in answers) == {201: 5, 202: 15}, [
        r.text for r in answers if r.status_code not in (201, 202)
    ]
    wallet = await ok(api.get("/customers/cus_1/coupons"))
    assert len(wallet["items"]) == 5
    queue = await ok(reviewer.get("/compensations", params={"state": "pending_review"}))
    assert len(queue["items"]) == 15


async def test_concurrent_requests_never_take_a_period_over_its_amount(
    api: httpx.AsyncClient, agent: httpx.AsyncClient, reviewer: httpx.AsyncClient
) -> None:
    await set_up(api, reviewer, period_limits=[{"period": "week", "max_amount": 2_000}])
    answers = await asyncio.gather(
        *(agent.post("/compensations", json=asking("cus_1", f"r{n}")) for n in range(12))
    )
    assert Counter(r.status_code for r in answers) == {201: 4, 202: 8}
    issued = [r.json()["value"] for r in answers if r.status_code == 201]
    assert sum(issued) == 2_000


async def test_one_order_compensated_by_concurrent_requests_is_issued_once(
    api: httpx.AsyncClient, agent: httpx.AsyncClient, reviewer: httpx.AsyncClient
) -> None:
    await set_up(api, reviewer)
    answers = await asyncio.gather(
        *(agent.post("/compensations", json=asking("cus_1", f"o{n}", order_id="ord_1"))
          for n in range(10))
    )  # fmt: skip
    assert Counter(r.status_code for r in answers) == {201: 1, 202: 9}
    held = [r.json() for r in answers if r.status_code == 202]
    assert all([e["threshold"] for e in h["exceeded"]] == ["same_order"] for h in held)


async def test_the_same_request_sent_many_times_at_once_is_one_compensation(
    api: httpx.AsyncClient, agent: httpx.AsyncClient, reviewer: httpx.AsyncClient
) -> None:
    await set_up(api, reviewer)
    body = asking("cus_1", "ticket-7", order_id="ord_7")
    answers = await asyncio.gather(*(agent.post("/compensations", json=body) for _ in range(10)))
    assert {r.status_code for r in answers} == {201}
    assert len({r.json()["coupon_id"] for r in answers}) == 1
    assert len((await ok(api.get("/customers/cus_1/coupons")))["items"]) == 1
    assert len((await ok(agent.get("/compensations")))["items"]) == 1


async def test_a_compensation_left_issuing_by_a_stopped_replica_is_finished_once(
    api: httpx.AsyncClient, agent: httpx.AsyncClient, reviewer: httpx.AsyncClient, service: Service
) -> None:
    """As if a replica stopped right after approving (counted, not yet issued): the resume
    worker issues the coupon, and a repeated request meanwhile gets the same one."""
    await set_up(api, reviewer, review_above=1_000)
    held = await compensate(agent, asking("cus_1", "t1", 2_000), 202)
    stalled = {"state": "issuing", "reviewed_by": "reviewer-1", "issuing_since": utcnow()}
    await service.db["compensations"].update_one({"_id": held["id"]}, {"$set": stalled})

    async def state() -> dict[str, Any]:
        return await ok(agent.get(f"/compensations/{held['id']}"))

    done = await eventually(state, until=lambda c: c["state"] == "issued", within=10)
    again = await compensate(agent, asking("cus_1", "t1", 2_000), 201)
    assert again["coupon_id"] == done["coupon_id"]
    wallet = await ok(api.get("/customers/cus_1/coupons"))
    assert [c["id"] for c in wallet["items"]] == [done["coupon_id"]]


async def test_concurrent_reviews_of_one_request_settle_it_once(
    api: httpx.AsyncClient, agent: httpx.AsyncClient, reviewer: httpx.AsyncClient
) -> None:
    await set_up(api, reviewer, review_above=1_000)
    held = await compensate(agent, asking("cus_1", "t1", 2_000), 202)
    path = f"/compensations/{held['id']}"
    answers = await asyncio.gather(
        *(reviewer.post(f"{path}/approve") for _ in range(4)),
        *(reviewer.post(f"{path}/reject", json={"reason": "duplicate"}) for _ in range(4)),
    )
    assert sorted(r.status_code for r in answers) == [200] + [409] * 7
    assert {r.json()["code"] for r in answers if r.status_code == 409} == {"compensation_state"}
    final = await ok(api.get(path))
    coupons = (await ok(api.get("/customers/cus_1/coupons")))["items"]
    assert len(coupons) == (1 if final["state"] == "issued" else 0)
    assert final["state"] in ("issued", "rejected")


async def test_tallies_carry_an_expiry_and_are_swept_once_past_it(
    api: httpx.AsyncClient,
    agent: httpx.AsyncClient,
    reviewer: httpx.AsyncClient,
    service: Service,
    tenant: str,
) -> None:
    await set_up(api, reviewer)
    issued = await compensate(agent, asking("cus_1", "t1"), 201)
    ids = [tally_id(tenant, "cus_1", Period(p), k) for p, k in issued["counted_in"].items()]
    tallies = service.db["compensation_tallies"]
    stored = await tallies.find({"_id": {"$in": ids}}).to_list()
    assert len(stored) == 3 and all(t["expires_at"] > utcnow() for t in stored)
    past = {"$set": {"expires_at": utcnow() - timedelta(seconds=1)}}
    await tallies.update_many({"_id": {"$in": ids}}, past)

    async def left() -> int:
        return await tallies.count_documents({"_id": {"$in": ids}})

    await eventually(left, until=lambda n: n == 0, within=10)
