"""The system's health as the gateway reports it."""

from __future__ import annotations

from contextlib import AsyncExitStack

from gateway.settings import DOMAINS
from tests.gateway.harness import nowhere, running_gateway
from tests.gateway.upstreams import ReadinessService
from tests.support.servers import serve


async def test_all_services_ready_is_ok() -> None:
    async with AsyncExitStack() as stack:
        urls = {
            f"{domain}_url": await stack.enter_async_context(serve(ReadinessService().app))
            for domain in DOMAINS
        }
        gateway = await stack.enter_async_context(running_gateway(**urls))
        health = await gateway.get("/healthz")
        ready = await gateway.get("/readyz")

    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok"
    assert set(body["services"]) == set(DOMAINS)
    for state in body["services"].values():
        assert state == {"status": "ok", "detail": {"ready": True, "checks": {"store": "ok"}}}
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok"}


async def test_a_service_not_ready_or_down_degrades_the_system() -> None:
    ready, failing = ReadinessService(), ReadinessService(ready=False)
    async with (
        serve(ready.app) as ready_url,
        serve(failing.app) as failing_url,
        running_gateway(
            customer_url=ready_url,
            tagging_url=ready_url,
            loyalty_url=ready_url,
            coupon_url=failing_url,
            reach_url=nowhere(),
        ) as gateway,
    ):
        health = await gateway.get("/healthz")
        ready_answer = await gateway.get("/readyz")

    assert health.status_code == 503
    body = health.json()
    assert body["status"] == "degraded"
    services = body["services"]
    assert services["customer"]["status"] == "ok"
    assert services["coupon"] == {
        "status": "not_ready",
        "detail": {"ready": False, "checks": {"store": "failing"}},
    }
    assert services["reach"]["status"] == "unavailable"
    assert services["reach"]["detail"] == {"error": "unreachable"}
    # The gateway itself stays in rotation: it answers the healthy services' routes.
    assert ready_answer.status_code == 200


async def test_liveness_asks_no_service() -> None:
    async with running_gateway() as gateway:  # every service unreachable
        response = await gateway.get("/livez")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
