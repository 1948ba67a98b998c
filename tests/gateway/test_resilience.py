"""When a service is busy, down or slow: retries only where a repeat is harmless, and a
problem that names the service otherwise."""

from __future__ import annotations

import asyncio

import pytest

from tests.gateway.harness import TENANT, nowhere, running_gateway
from tests.gateway.upstreams import FlakyService, StalledService
from tests.support.servers import serve


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_an_idempotent_call_is_retried_when_the_service_is_busy(method: str) -> None:
    flaky = FlakyService(failures=1)
    async with serve(flaky.app) as url, running_gateway(loyalty_url=url) as gateway:
        response = await gateway.request(method, "/api/v1/loyalty/accounts/a1", headers=TENANT)

    assert response.status_code == 200
    assert flaky.hits["/accounts/a1"] == 2


async def test_a_post_without_idempotency_key_is_sent_once() -> None:
    flaky = FlakyService(failures=1)
    async with serve(flaky.app) as url, running_gateway(loyalty_url=url) as gateway:
        response = await gateway.post("/api/v1/loyalty/top-ups", json={}, headers=TENANT)

    # The service's own answer, untouched: the client decides whether to try again.
    assert response.status_code == 503
    assert response.json()["code"] == "busy"
    assert flaky.hits["/top-ups"] == 1


async def test_a_post_with_idempotency_key_is_retried() -> None:
    flaky = FlakyService(failures=1)
    headers = {**TENANT, "Idempotency-Key": "top-up-000001"}
    async with serve(flaky.app) as url, running_gateway(loyalty_url=url) as gateway:
        response = await gateway.post("/api/v1/loyalty/top-ups", json={}, headers=headers)

    assert response.status_code == 200
    assert flaky.hits["/top-ups"] == 2


@pytest.mark.parametrize(
    ("status", "answered", "hits"),
    [pytest.param(502, 200, 2, id="502-retried"), pytest.param(500, 500, 1, id="500-not-retried")],
)
async def test_a_bad_gateway_answer_is_retried_but_a_server_error_is_not(
    status: int, answered: int, hits: int
) -> None:
    flaky = FlakyService(failures=1, status=status)
    async with serve(flaky.app) as url, running_gateway(loyalty_url=url) as gateway:
        response = await gateway.get("/api/v1/loyalty/levels", headers=TENANT)

    assert response.status_code == answered
    assert flaky.hits["/levels"] == hits


async def test_retries_stop_after_the_configured_attempts() -> None:
    flaky = FlakyService(failures=100)
    async with (
        serve(flaky.app) as url,
        running_gateway(loyalty_url=url, upstream_retries=2) as gateway,
    ):
        response = await gateway.get("/api/v1/loyalty/levels", headers=TENANT)

    assert response.status_code == 503
    assert response.json()["code"] == "busy"  # the service's last answer
    assert flaky.hits["/levels"] == 3


async def test_an_unreachable_service_is_unavailable_and_named() -> None:
    async with running_gateway(reach_url=nowhere()) as gateway:
        response = await gateway.get("/api/v1/reach/templates", headers=TENANT)

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "upstream_unavailable"
    assert problem["service"] == "reach"
    assert "reach" in problem["detail"]


async def test_a_slow_service_times_out() -> None:
    stalled = StalledService()
    async with serve(stalled.app) as url:
        try:
            async with running_gateway(coupon_url=url, upstream_read_timeout=0.2) as gateway:
                response = await gateway.get("/api/v1/coupon/batches", headers=TENANT)
        finally:
            stalled.released.set()  # let the held request finish so the server can stop

    assert stalled.arrived.is_set()
    assert response.status_code == 504
    problem = response.json()
    assert problem["code"] == "upstream_timeout"
    assert problem["service"] == "coupon"


async def test_a_full_pool_sheds_the_call_without_reaching_the_service() -> None:
    stalled = StalledService()
    async with serve(stalled.app) as url:
        try:
            async with running_gateway(
                coupon_url=url, upstream_max_connections=1, upstream_connect_timeout=0.2
            ) as gateway:
                held = asyncio.create_task(gateway.get("/api/v1/coupon/held", headers=TENANT))
                await asyncio.wait_for(stalled.arrived.wait(), 10)
                response = await gateway.get("/api/v1/coupon/shed", headers=TENANT)
                stalled.released.set()
                assert (await held).status_code == 200
        finally:
            stalled.released.set()

    assert response.status_code == 503
    problem = response.json()
    assert problem["code"] == "gateway_busy"
    assert problem["service"] == "coupon"
