"""The live alert stream: an alert reaches a subscriber within a second of the change that
causes it, through the real broker (the service publishes it through its outbox, and each
replica's reader of the coupon topic fans it out to its SSE clients), directly and through
the gateway; a reconnect with Last-Event-ID resumes where the client left off. The budget
alert blocks new approvals, not the campaign whose approval crossed the line."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.main import create_app as gateway_app
from gateway.settings import GatewaySettings
from servicekit.app import create_service_app
from servicekit.runtime import Worker
from services.coupon.api import alerts as alerts_api
from services.coupon.events.alerts_stream import run_reader
from services.coupon.service.alert_evaluator import monitoring
from tests.coupon.sse import Received, live_stream
from tests.coupon.support import (
    Client,
    Service,
    batch_spec,
    claim,
    draft_campaign,
    ok,
    open_budget,
    step,
)
from tests.support.servers import serve
from tests.support.waiting import eventually


@pytest.fixture(scope="module")
def overrides() -> dict[str, Any]:
    return {"alert_stream_keepalive_seconds": 0.5}


@pytest.fixture(scope="module")
async def gateway(service: Service) -> AsyncIterator[str]:
    """The gateway in front of the coupon service, with a read timeout far shorter than the
    stream stays open: a stream must outlive it."""
    settings = GatewaySettings(
        environment="test", coupon_url=service.url, upstream_read_timeout=0.2
    )
    async with serve(gateway_app(settings)) as url:
        yield url


def _raised_for(budget_id: str) -> Callable[[Received], bool]:
    return lambda e: e.event == "alert_raised" and e.data["subject_id"] == budget_id


async def _pending_campaign(api: httpx.AsyncClient, budget_id: str, stock: int) -> str:
    """A campaign asking for `stock` coupons of 10.00 (its maximum subsidy), submitted."""
    campaign = await draft_campaign(api, budget_id, batch_spec(stock=stock))
    await step(api, campaign["id"], "submit")
    return campaign["id"]


async def _cross_the_line(
    api: httpx.AsyncClient, stream_events: Any, budget_id: str, campaign_id: str
) -> tuple[dict, Received, float]:
    """Approve the campaign that commits the budget past its line; how long after the
    approval answered its alert arrived on the stream."""
    approved = await ok(api.post(f"/campaigns/{campaign_id}/approve"))
    returned = time.perf_counter()
    raised = await stream_events.next_matching(_raised_for(budget_id), within=5.0)
    return approved, raised, raised.at - returned


async def test_a_budget_alert_reaches_the_stream_within_a_second_and_blocks_new_approvals(
    api: httpx.AsyncClient, client: Client, service: Service, tenant: str
) -> None:
    budget = await open_budget(api, 100_000, alert_thresholds=[80, 95])  # line: 5,000 left
    campaign_id = await _pending_campaign(api, budget["id"], stock=96)  # commits 96,000
    async with (
        live_stream(api, "/alerts/stream") as stream,
        client(tenant=f"{tenant}-other") as stranger,
        live_stream(stranger, "/alerts/stream") as strangers_stream,
    ):
        approved, raised, latency = await _cross_the_line(api, stream, budget["id"], campaign_id)
        print(f"budget alert on the stream {latency * 1000:.0f} ms after the approval answered")
        assert latency < 1.0, f"the alert took {latency:.3f}s"
        assert raised.id and raised.data["kind"] == "budget"
        assert raised.data["owner"] == "growth" and raised.data["budget_id"] == budget["id"]
        assert raised.data["measures"]["remaining"] == 4_000

        # No new approval under the budget; the campaign whose reservation crossed the
        # line issues its coupons (nothing is spent yet).
        other = await _pending_campaign(api, budget["id"], stock=1)
        refused = await api.post(f"/campaigns/{other}/approve")
        assert refused.status_code == 409 and refused.json()["code"] == "budget_blocked"
        assert raised.data["measures"]["consumed"] == 0
        await step(api, campaign_id, "start")
        batch_id = next(iter(approved["batch_ids"].values()))
        await ok(claim(api, batch_id, "c-crossing"), 201)

        # A top-up above the line resolves it (on the stream too); approvals resume.
        await ok(api.post(f"/budgets/{budget['id']}/top-ups", json={"amount": 50_000}))
        returned = time.perf_counter()
        resolved = await stream.next_matching(
            lambda e: e.event == "alert_resolved" and e.data["alert_id"] == raised.data["alert_id"]
        )
        print(f"resolved on the stream {(resolved.at - returned) * 1000:.0f} ms after the top-up")
        assert resolved.at - returned < 1.0
        assert resolved.data["resolved_by"] == "system"
        claimed = await eventually(
            lambda: claim(api, batch_id, "c-after"), until=lambda r: r.status_code == 201
        )
        assert claimed.json()["batch_id"] == batch_id
        assert (await ok(api.post(f"/campaigns/{other}/approve")))["state"] == "approved"
        assert strangers_stream.events == []  # another tenant's stream saw none of it
    hub = monitoring(service.app.state.runtime).hub
    await eventually(lambda: hub.subscribers(tenant) == 0)  # a closed stream leaves no trace


def stream_only_replica(service: Service) -> FastAPI:
    """A replica of the service that serves only the alert stream: no consumer, no
    evaluator, so whatever reaches its clients came through the broker."""
    return create_service_app(
        service.settings,
        title="coupon stream replica",
        description="",
        routers=[alerts_api.router],
        indexes=[],
        workers=[Worker("alert-stream", run_reader)],
    )


async def test_an_alert_raised_on_one_replica_reaches_the_streams_of_another(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    budget = await open_budget(api, 100_000, alert_thresholds=[90])
    campaign_id = await _pending_campaign(api, budget["id"], stock=91)
    async with (
        serve(stream_only_replica(service)) as second_url,
        httpx.AsyncClient(base_url=second_url, headers={"X-Tenant-Id": tenant}) as second,
        live_stream(second, "/alerts/stream") as stream,
    ):
        _, raised, latency = await _cross_the_line(api, stream, budget["id"], campaign_id)
        print(f"on another replica: {latency * 1000:.0f} ms")
        assert latency < 1.0, f"the alert took {latency:.3f}s to reach the other replica"
        assert raised.data["budget_id"] == budget["id"]


async def test_the_stream_through_the_gateway_outlives_its_read_timeout(
    gateway: str, tenant: str
) -> None:
    headers = {"X-Tenant-Id": tenant}
    async with httpx.AsyncClient(base_url=f"{gateway}/api/v1/coupon", headers=headers) as api:
        budget = await open_budget(api, 100_000, alert_thresholds=[90])
        campaign_id = await _pending_campaign(api, budget["id"], stock=91)
        async with live_stream(api, "/alerts/stream") as stream:
            # Quiet for longer than the gateway's read timeout (0.2 s): keep-alive comments
            # and the gateway's stream timeout keep it open.
            await eventually(lambda: stream.comments.count("keep-alive") >= 3, within=10)
            assert not stream.ended
            _, raised, latency = await _cross_the_line(api, stream, budget["id"], campaign_id)
            print(f"through the gateway: {latency * 1000:.0f} ms")
            assert latency < 1.0, f"the alert took {latency:.3f}s through the gateway"
            assert raised.data["severity"] == "critical"


async def test_a_client_reconnecting_through_the_gateway_gets_what_it_missed(
    gateway: str, tenant: str
) -> None:
    """Last-Event-ID passes the gateway; the replica replays what came after it."""
    headers = {"X-Tenant-Id": tenant}
    async with httpx.AsyncClient(base_url=f"{gateway}/api/v1/coupon", headers=headers) as api:
        budget = await open_budget(api, 100_000, alert_thresholds=[90])
        first_id = await _pending_campaign(api, budget["id"], stock=91)
        async with live_stream(api, "/alerts/stream?kind=budget") as stream:
            _, raised, _ = await _cross_the_line(api, stream, budget["id"], first_id)
        # Away: the alert is resolved by a top-up meanwhile.
        await ok(api.post(f"/budgets/{budget['id']}/top-ups", json={"amount": 100_000}))
        alert_id = raised.data["alert_id"]
        await eventually(
            lambda: api.get(f"/alerts/{alert_id}"),
            until=lambda r: r.json()["state"] == "resolved",
        )
        assert raised.id is not None
        async with live_stream(api, "/alerts/stream", {"Last-Event-ID": raised.id}) as again:
            resolved = await again.next_matching(lambda e: e.event == "alert_resolved")
            assert resolved.data["alert_id"] == alert_id
            assert not again.of("alert_raised", alert_id=alert_id)  # not repeated
