"""Behaviour events over real HTTP on the real embedded store and broker: one by one and in
batches with a per-item report, idempotent by behaviour id (also under concurrent batches),
bad input refused with nothing written, kept for the retention by a TTL index, listed
newest first by cursor, and published as valid `customer.behaviour_recorded.v1` events."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.errors import PROBLEM_JSON
from servicekit.outbox import outbox_events
from services.customer.domain.behaviour import RETENTION
from tests.customer.support import Client, Service
from tests.support.events import published
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
RECORDED = "customer.behaviour_recorded.v1"


def ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat()


def event(**overrides: Any) -> dict[str, Any]:
    return {
        "kind": "product_view",
        "occurred_at": ago(minutes=5),
        "target": {"product_id": "SKU-1", "category": "tea"},
        **overrides,
    }


async def register(api: httpx.AsyncClient) -> str:
    response = await api.post(
        "/customers", json={"display_name": "Han Meimei", "source_channel": "mini_program"}
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def written(db: AsyncDatabase[Any], tenant: str) -> tuple[int, int]:
    """(behaviour documents, outbox entries) of `tenant`: what a request left behind."""
    return (
        await db["behaviour_events"].count_documents({"tenant": tenant}),
        len(await outbox_events(db, tenant=tenant, type=RECORDED)),
    )


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    return response.json()


async def recorded_events(bootstrap: str, tenant: str, count: int) -> list[Any]:
    envelopes = await eventually(
        lambda: published(bootstrap, tenant=tenant),
        until=lambda found: len([e for e in found if e.type == RECORDED]) >= count,
    )
    return [e for e in envelopes if e.type == RECORDED]


# ------------------------------------------------------------------------- one event


async def test_one_event_is_recorded_listed_and_published(
    api: httpx.AsyncClient, tenant: str, service: Service
) -> None:
    customer = await register(api)
    response = await api.post(f"/customers/{customer}/behaviour", json=event())
    assert response.status_code == 201, response.text
    outcome = response.json()
    assert outcome["status"] == "recorded" and outcome["behaviour_id"].startswith("beh_")

    listed = (await api.get(f"/customers/{customer}/behaviour")).json()
    assert [i["behaviour_id"] for i in listed["items"]] == [outcome["behaviour_id"]]
    assert listed["items"][0]["target"] == {"product_id": "SKU-1", "category": "tea"}

    [envelope] = await recorded_events(service.settings.kafka_bootstrap_servers, tenant, 1)
    assert envelope.subject == customer
    assert envelope.data["behaviour_id"] == outcome["behaviour_id"]
    assert envelope.data["kind"] == "product_view"


async def test_a_repeated_behaviour_id_is_a_duplicate_and_stored_once(
    api: httpx.AsyncClient, tenant: str, db: AsyncDatabase[Any]
) -> None:
    customer = await register(api)
    first = await api.post(f"/customers/{customer}/behaviour", json=event(behaviour_id="trk-1"))
    again = await api.post(f"/customers/{customer}/behaviour", json=event(behaviour_id="trk-1"))
    assert (first.status_code, first.json()["status"]) == (201, "recorded")
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    assert again.json()["behaviour_id"] == "trk-1"
    assert await written(db, tenant) == (1, 1)


async def test_an_unknown_customer_is_a_404_and_nothing_is_written(
    api: httpx.AsyncClient, tenant: str, db: AsyncDatabase[Any]
) -> None:
    response = await api.post(f"/customers/cus_{'0' * 32}/behaviour", json=event())
    assert assert_problem(response, 404)["code"] == "customer_not_found"
    assert await written(db, tenant) == (0, 0)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (event(kind="teleport"), "kind"),
        (event(kind={"$ne": None}), "kind"),
        (event(occurred_at={"$gt": ""}), "occurred_at"),
        (event(occurred_at="2026-05-01T10:00:00"), "occurred_at"),
        (event(occurred_at=ago(minutes=-30)), "occurred_at"),
        (event(occurred_at=ago(days=RETENTION.days + 1)), "occurred_at"),
        (event(target={"product_id": {"$ne": None}}), "target.product_id"),
        (event(target={"password": "x"}), "target.password"),
        (event(target={"keyword": "k" * 101}), "target.keyword"),
        (event(behaviour_id={"$ne": None}), "behaviour_id"),
        (event(behaviour_id="has spaces"), "behaviour_id"),
        (event(tenant="someone-else"), "tenant"),
    ],
    ids=[
        "unknown-kind",
        "operator-kind",
        "operator-time",
        "naive-time",
        "future-time",
        "older-than-retention",
        "operator-target",
        "unknown-target-key",
        "long-keyword",
        "operator-id",
        "malformed-id",
        "tenant-in-body",
    ],
)
async def test_bad_events_are_refused_with_the_field_and_write_nothing(
    api: httpx.AsyncClient, tenant: str, db: AsyncDatabase[Any], body: dict[str, Any], field: str
) -> None:
    customer = await register(api)
    problem = assert_problem(await api.post(f"/customers/{customer}/behaviour", json=body), 422)
    assert field in {e["field"] for e in problem["errors"]}, problem
    assert await written(db, tenant) == (0, 0)


# --------------------------------------------------------------------------- batches


async def test_a_batch_stores_the_valid_items_and_reports_each_other_one(
    api: httpx.AsyncClient, tenant: str, db: AsyncDatabase[Any], service: Service
) -> None:
    alice, bob = await register(api), await register(api)
    seen = await api.post(f"/customers/{alice}/behaviour", json=event(behaviour_id="seen-1"))
    assert seen.status_code == 201
    items = [
        {**event(behaviour_id="b-0"), "customer_id": alice},  # 0 recorded
        {**event(kind="search", target={"keyword": "绿茶"}), "customer_id": bob},  # 1 recorded
        {**event(kind="teleport"), "customer_id": alice},  # 2 unknown kind
        {**event(), "customer_id": {"$ne": None}},  # 3 operator
        {**event(occurred_at=ago(hours=-2)), "customer_id": bob},  # 4 future
        {**event(), "customer_id": f"cus_{'0' * 32}"},  # 5 unknown customer
        {**event(behaviour_id="b-0"), "customer_id": alice},  # 6 repeat within the batch
        {**event(behaviour_id="seen-1"), "customer_id": alice},  # 7 recorded before
        {**event(), "customer_id": bob, "extra": 1},  # 8 unknown field
        {"customer_id": bob},  # 9 missing kind and time
    ]
    response = await api.post("/behaviour/batch", json={"events": items})
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["recorded"], report["duplicates"], report["rejected"]) == (2, 2, 6)
    statuses = [(i["index"], i["status"]) for i in report["items"]]
    assert statuses == [
        (0, "recorded"),
        (1, "recorded"),
        (2, "rejected"),
        (3, "rejected"),
        (4, "rejected"),
        (5, "rejected"),
        (6, "duplicate"),
        (7, "duplicate"),
        (8, "rejected"),
        (9, "rejected"),
    ]
    reasons = {i["index"]: {(e["field"], e["code"]) for e in i["errors"]} for i in report["items"]}
    assert reasons[2] == {("kind", "validation_failed")}
    assert reasons[3] == {("customer_id", "validation_failed")}
    assert reasons[4] == {("occurred_at", "occurred_at_out_of_range")}
    assert reasons[5] == {("customer_id", "customer_not_found")}
    assert reasons[8] == {("extra", "validation_failed")}
    assert reasons[9] == {("kind", "validation_failed"), ("occurred_at", "validation_failed")}

    assert await written(db, tenant) == (3, 3)  # seen-1, b-0 and bob's search
    envelopes = await recorded_events(service.settings.kafka_bootstrap_servers, tenant, 3)
    assert {e.data["behaviour_id"] for e in envelopes} >= {"seen-1", "b-0"}
    assert {e.subject for e in envelopes} == {alice, bob}


async def test_a_full_batch_of_1000_is_stored_with_its_events(
    api: httpx.AsyncClient, tenant: str, db: AsyncDatabase[Any]
) -> None:
    customers = [await register(api) for _ in range(5)]
    items = [
        {**event(behaviour_id=f"full-{i}"), "customer_id": customers[i % 5]} for i in range(1000)
    ]
    response = await api.post("/behaviour/batch", json={"events": items})
    assert response.status_code == 200, response.text
    assert response.json()["recorded"] == 1000
    assert await written(db, tenant) == (1000, 1000)


async def test_an_oversized_batch_is_refused_whole_and_writes_nothing(
    api: httpx.AsyncClient, tenant: str, db: AsyncDatabase[Any]
) -> None:
    customer = await register(api)
    items = [{**event(), "customer_id": customer} for _ in range(1001)]
    problem = assert_problem(await api.post("/behaviour/batch", json={"events": items}), 422)
    assert {e["field"] for e in problem["errors"]} == {"events"}

    padded = [{**event(), "customer_id": customer, "pad": "x" * 4000} for _ in range(600)]
    assert_problem(await api.post("/behaviour/batch", json={"events": padded}), 413)
    for body in ({"events": []}, {"events": {"$ne": None}}, {"events": ["x"]}, [event()]):
        assert_problem(await api.post("/behaviour/batch", json=body), 422)
    assert await written(db, tenant) == (0, 0)


async def test_the_same_batch_sent_concurrently_is_stored_once(
    api: httpx.AsyncClient, tenant: str, db: AsyncDatabase[Any]
) -> None:
    customer = await register(api)
    items = [{**event(behaviour_id=f"race-{i}"), "customer_id": customer} for i in range(50)]
    responses = await asyncio.gather(
        *(api.post("/behaviour/batch", json={"events": items}) for _ in range(5))
    )
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    assert sum(r.json()["recorded"] for r in responses) == 50
    assert sum(r.json()["duplicates"] for r in responses) == 4 * 50
    assert await written(db, tenant) == (50, 50)


# ---------------------------------------------------------------- reading and keeping


async def test_recent_behaviour_is_listed_newest_first_by_cursor_kind_and_since(
    api: httpx.AsyncClient,
) -> None:
    customer = await register(api)
    kinds = ["page_view", "search", "page_view", "add_to_cart", "page_view", "search", "share"]
    items = [
        {"customer_id": customer, "behaviour_id": f"e{i}", "kind": k, "occurred_at": ago(hours=i)}
        for i, k in enumerate(kinds)
    ]
    # Two at the very same time: the id breaks the tie, so paging neither repeats nor drops.
    items.append({**items[3], "behaviour_id": "e3b"})
    assert (await api.post("/behaviour/batch", json={"events": items})).json()["recorded"] == 8

    walked: list[str] = []
    params: dict[str, Any] = {"limit": 3}
    while True:
        page = (await api.get(f"/customers/{customer}/behaviour", params=params)).json()
        walked += [i["behaviour_id"] for i in page["items"]]
        if not page["next_cursor"]:
            break
        params["cursor"] = page["next_cursor"]
    assert walked == ["e0", "e1", "e2", "e3b", "e3", "e4", "e5", "e6"]

    views = await api.get(f"/customers/{customer}/behaviour", params={"kind": "page_view"})
    assert [i["behaviour_id"] for i in views.json()["items"]] == ["e0", "e2", "e4"]
    recent = await api.get(f"/customers/{customer}/behaviour", params={"since": ago(hours=2.5)})
    assert [i["behaviour_id"] for i in recent.json()["items"]] == ["e0", "e1", "e2"]

    for bad in ({"kind": "teleport"}, {"cursor": "not-a-cursor"}, {"since": "yesterday"}):
        assert_problem(await api.get(f"/customers/{customer}/behaviour", params=bad), 422)
    missing = await api.get(f"/customers/cus_{'0' * 32}/behaviour")
    assert assert_problem(missing, 404)["code"] == "customer_not_found"


async def test_behaviour_expires_after_the_retention_by_a_ttl_index(
    api: httpx.AsyncClient, tenant: str, db: AsyncDatabase[Any]
) -> None:
    indexes = await db["behaviour_events"].index_information()
    ttl = indexes["retention_ttl"]
    assert ttl["key"] == [("occurred_at", 1)]
    assert ttl["expireAfterSeconds"] == int(RETENTION.total_seconds()) == 180 * 86_400

    # The behaviour id is unique per tenant by being the `_id` with the tenant: no extra
    # index to pay on the service's highest-volume write.
    customer = await register(api)
    await api.post(f"/customers/{customer}/behaviour", json=event(behaviour_id="ttl-1"))
    stored = await db["behaviour_events"].find_one({"tenant": tenant})
    assert stored["_id"] == f"{tenant}:ttl-1"
    assert isinstance(stored["occurred_at"], datetime)  # a TTL index ignores anything else


async def test_tenants_never_see_each_others_behaviour(
    api: httpx.AsyncClient, client: Client
) -> None:
    customer = await register(api)
    ours = await api.post(f"/customers/{customer}/behaviour", json=event(behaviour_id="shared"))
    assert ours.status_code == 201
    async with client(tenant=f"other{uuid.uuid4().hex[:8]}") as other:
        theirs = await register(other)
        same_id = await other.post(
            f"/customers/{theirs}/behaviour", json=event(behaviour_id="shared")
        )
        assert same_id.status_code == 201  # a behaviour id is unique per tenant only
        assert (await other.get(f"/customers/{customer}/behaviour")).status_code == 404
