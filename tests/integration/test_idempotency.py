"""`Idempotency-Key` over real HTTP against the customer service and its real store: a
retried request does the work once and returns the same answer, whatever the timing."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from servicekit.errors import PROBLEM_JSON

pytestmark = pytest.mark.integration


def new_key() -> str:
    return f"key-{uuid.uuid4().hex}"


async def register(
    http: httpx.AsyncClient,
    tenant: str,
    *,
    key: str | None = None,
    display_name: Any = "Li Lei",
    source_channel: str = "store",
) -> httpx.Response:
    headers = {"X-Tenant-Id": tenant}
    if key is not None:
        headers["Idempotency-Key"] = key
    body = {"display_name": display_name, "source_channel": source_channel}
    return await http.post("/customers", json=body, headers=headers)


async def customer_ids(http: httpx.AsyncClient, tenant: str) -> list[str]:
    response = await http.get("/customers", params={"limit": 200}, headers={"X-Tenant-Id": tenant})
    assert response.status_code == 200, response.text
    return [c["id"] for c in response.json()["items"]]


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    return response.json()


async def test_a_retry_with_the_same_key_replays_the_first_answer(
    http: httpx.AsyncClient, tenant: str
) -> None:
    key = new_key()
    first = await register(http, tenant, key=key)
    again = await register(http, tenant, key=key)

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert again.headers["content-type"] == first.headers["content-type"]
    assert await customer_ids(http, tenant) == [first.json()["id"]]


async def test_the_same_key_with_another_body_is_refused(
    http: httpx.AsyncClient, tenant: str
) -> None:
    key = new_key()
    first = await register(http, tenant, key=key, display_name="Li Lei")
    reused = await register(http, tenant, key=key, display_name="Han Meimei")

    body = assert_problem(reused, 422)
    assert body["code"] == "idempotency_key_reused"
    assert await customer_ids(http, tenant) == [first.json()["id"]]


async def test_concurrent_duplicates_create_one_customer(
    http: httpx.AsyncClient, tenant: str
) -> None:
    key = new_key()
    answers = await asyncio.gather(*(register(http, tenant, key=key) for _ in range(25)))

    created = [a for a in answers if a.status_code == 201]
    in_progress = [a for a in answers if a.status_code == 409]
    assert len(created) + len(in_progress) == 25, [a.status_code for a in answers]
    assert created, "the request that claimed the key must answer 201"
    assert {a.text for a in created} == {created[0].text}
    assert sum("idempotent-replayed" not in a.headers for a in created) == 1
    assert all(assert_problem(a, 409)["code"] == "idempotency_key_conflict" for a in in_progress)
    assert await customer_ids(http, tenant) == [created[0].json()["id"]]


async def test_keys_are_scoped_to_the_tenant(http: httpx.AsyncClient, unique: str) -> None:
    key = new_key()
    brand_a, brand_b = f"a{unique}", f"b{unique}"
    for_a = await register(http, brand_a, key=key)
    for_b = await register(http, brand_b, key=key)

    assert for_a.status_code == for_b.status_code == 201
    assert "idempotent-replayed" not in for_b.headers
    assert for_a.json()["id"] != for_b.json()["id"]
    assert await customer_ids(http, brand_a) == [for_a.json()["id"]]
    assert await customer_ids(http, brand_b) == [for_b.json()["id"]]


@pytest.mark.parametrize("key", ["short", "x" * 256], ids=["too-short", "too-long"])
async def test_a_key_of_the_wrong_length_is_refused_before_any_work(
    http: httpx.AsyncClient, tenant: str, key: str
) -> None:
    body = assert_problem(await register(http, tenant, key=key), 422)
    assert "8 to 255" in body["detail"]
    assert await customer_ids(http, tenant) == []


async def test_a_refused_request_stores_and_replays_its_refusal(
    http: httpx.AsyncClient, tenant: str
) -> None:
    key = new_key()
    first = await register(http, tenant, key=key, display_name={"$gt": ""})
    again = await register(http, tenant, key=key, display_name={"$gt": ""})

    assert assert_problem(first, 422)["code"] == "validation_failed"
    assert assert_problem(again, 422) == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert await customer_ids(http, tenant) == []


async def test_requests_without_a_key_are_not_deduplicated(
    http: httpx.AsyncClient, tenant: str
) -> None:
    first = await register(http, tenant)
    second = await register(http, tenant)

    assert first.status_code == second.status_code == 201
    assert "idempotent-replayed" not in second.headers
    assert sorted(await customer_ids(http, tenant)) == sorted(
        [first.json()["id"], second.json()["id"]]
    )
