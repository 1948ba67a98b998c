"""Partner platforms through the gateway: staff register a partner and get its key once; a
request signed with HMAC-SHA256 over method, path, timestamp, nonce and body hash reaches the
partner API as the partner's tenant; a tampered, stale, replayed or misdirected request is
refused; rotation and suspension take effect at once. Against the real embedded store."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gateway.partners.signature import SignedRequest, sign
from tests.gateway.harness import running_gateway

PARTNER_PATH = "/api/v1/coupon/partner/quota?batch=b1"
STAFF = {"X-Tenant-Id": "brand-a"}


@pytest.fixture
async def gateway(infra: Any, echo_url: str) -> AsyncIterator[httpx.AsyncClient]:
    database = f"gateway_{uuid.uuid4().hex[:8]}"
    async with running_gateway(
        coupon_url=echo_url, mongodb_uri=infra.mongodb_uri, mongodb_database=database
    ) as client:
        yield client


async def register(gateway: httpx.AsyncClient, name: str = "Airline miles") -> dict[str, Any]:
    response = await gateway.post("/api/v1/gateway/partners", json={"name": name}, headers=STAFF)
    assert response.status_code == 201, response.text
    issued: dict[str, Any] = response.json()
    return issued


def signed(
    key: dict[str, Any],
    method: str,
    target: str,
    body: bytes = b"",
    *,
    nonce: str | None = None,
    timestamp: int | None = None,
    secret: str | None = None,
) -> dict[str, str]:
    """The headers a partner sends, signed as the partner API documents."""
    request = SignedRequest(
        method=method,
        target=target,
        timestamp=str(timestamp if timestamp is not None else int(time.time())),
        nonce=nonce or uuid.uuid4().hex,
        body=body,
    )
    return {
        "X-Partner-Key": key["partner"]["key_id"],
        "X-Timestamp": request.timestamp,
        "X-Nonce": request.nonce,
        "X-Signature": sign(secret or key["secret"], request),
        "Content-Type": "application/json",
    }


async def call(
    gateway: httpx.AsyncClient, key: dict[str, Any], body: bytes = b'{"count": 10}', **kw: Any
) -> httpx.Response:
    headers = signed(key, "POST", PARTNER_PATH, body, **kw)
    return await gateway.post(PARTNER_PATH, content=body, headers=headers)


async def test_a_signed_request_reaches_the_partner_api_as_the_partners_tenant(
    gateway: httpx.AsyncClient,
) -> None:
    key = await register(gateway)
    assert key["secret"] and key["partner"]["tenant"] == "brand-a"
    body = b'{"count": 10}'
    headers = {**signed(key, "POST", PARTNER_PATH, body), "X-Tenant-Id": "brand-b"}
    response = await gateway.post(PARTNER_PATH, content=body, headers=headers)
    assert response.status_code == 200, response.text
    seen = response.json()
    assert seen["raw_path"] == "/partner/quota" and seen["query"] == "batch=b1"
    assert seen["body"] == body.decode()
    # The tenant is the partner's, whatever the request claims.
    assert seen["headers"]["x-tenant-id"] == "brand-a"
    assert seen["headers"]["x-actor-kind"] == "partner"
    assert seen["headers"]["x-actor-id"] == key["partner"]["partner_id"]
    assert seen["headers"]["x-actor-roles"] == "partner"

    listed = (await gateway.get("/api/v1/gateway/partners", headers=STAFF)).json()
    assert [p["partner_id"] for p in listed] == [key["partner"]["partner_id"]]
    assert "secret" not in json.dumps(listed) and "sealed" not in json.dumps(listed)


async def refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code


async def test_tampered_stale_forged_and_misdirected_requests_are_refused(
    gateway: httpx.AsyncClient,
) -> None:
    key = await register(gateway)
    headers = signed(key, "POST", PARTNER_PATH, b'{"count": 10}')
    tampered = await gateway.post(PARTNER_PATH, content=b'{"count": 9999}', headers=headers)
    await refused(tampered, 401, "unauthenticated")
    await refused(
        await call(gateway, key, timestamp=int(time.time()) - 301), 401, "unauthenticated"
    )
    await refused(
        await call(gateway, key, timestamp=int(time.time()) + 301), 401, "unauthenticated"
    )
    await refused(await call(gateway, key, secret="guessed"), 401, "unauthenticated")
    unknown = {**key, "partner": {**key["partner"], "key_id": "pk_" + "0" * 24}}
    await refused(await call(gateway, unknown), 401, "unauthenticated")
    bad_nonce = signed(key, "POST", PARTNER_PATH, b"{}", nonce="short")
    await refused(
        await gateway.post(PARTNER_PATH, content=b"{}", headers=bad_nonce), 401, "unauthenticated"
    )
    # A valid signature opens only the partner API.
    elsewhere = "/api/v1/customer/customers"
    headers = signed(key, "GET", elsewhere)
    await refused(await gateway.get(elsewhere, headers=headers), 403, "partner_path")


async def test_a_nonce_works_once_even_when_replayed_concurrently(
    gateway: httpx.AsyncClient,
) -> None:
    key = await register(gateway)
    body = b'{"count": 1}'
    headers = signed(key, "POST", PARTNER_PATH, body)
    answers = await asyncio.gather(
        *(gateway.post(PARTNER_PATH, content=body, headers=headers) for _ in range(20))
    )
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] + [401] * 19
    replays = [r for r in answers if r.status_code == 401]
    assert {r.json()["code"] for r in replays} == {"replayed"}


async def test_rotation_and_suspension_take_effect_at_once(gateway: httpx.AsyncClient) -> None:
    key = await register(gateway)
    partner_id = key["partner"]["partner_id"]
    assert (await call(gateway, key)).status_code == 200

    rotated = (
        await gateway.post(f"/api/v1/gateway/partners/{partner_id}/rotate", headers=STAFF)
    ).json()
    await refused(await call(gateway, key), 401, "unauthenticated")
    assert (await call(gateway, rotated)).status_code == 200

    suspend = await gateway.post(f"/api/v1/gateway/partners/{partner_id}/suspend", headers=STAFF)
    assert suspend.json()["state"] == "suspended"
    await refused(await call(gateway, rotated), 401, "unauthenticated")
    await gateway.post(f"/api/v1/gateway/partners/{partner_id}/resume", headers=STAFF)
    assert (await call(gateway, rotated)).status_code == 200

    missing = await gateway.post(
        "/api/v1/gateway/partners/ptn_" + "0" * 24 + "/suspend", headers=STAFF
    )
    await refused(missing, 404, "partner_not_found")
    await refused(
        await gateway.post("/api/v1/gateway/partners", json={"name": ""}, headers=STAFF),
        422,
        "validation_failed",
    )
