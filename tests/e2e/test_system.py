"""The whole system as a client meets it: every service and the gateway on real sockets,
on the session's embedded broker and store, called over HTTP through the gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts import Envelope, Topic, event_class
from gateway.main import create_app as gateway_app
from gateway.settings import GatewaySettings
from tests.coupon.support import batch_spec, claim, ok, running_batches
from tests.support.platform import SERVICES
from tests.support.servers import serve
from tests.support.settings import settings_for
from tests.support.waiting import eventually as _eventually

#: Every service and consumer group of the platform shares two cores here: give the whole
#: system longer than a single service's tests before calling a condition unmet.
SYSTEM_WITHIN = 90


eventually = partial(_eventually, within=SYSTEM_WITHIN)


pytestmark = pytest.mark.integration


@dataclass
class System:
    gateway: httpx.AsyncClient
    infra: object


@pytest.fixture(scope="module")
async def system(infra) -> AsyncIterator[System]:
    unique = "e2e"
    async with AsyncExitStack() as stack:
        urls, apps = {}, []
        for name, (factory, settings_cls) in SERVICES.items():
            app = factory(settings_for(settings_cls, infra, unique))
            urls[name] = await stack.enter_async_context(serve(app))
            apps.append(app)
        # Every consumer group has joined before the first test: a slow join (seconds on the
        # embedded broker, far more on a loaded machine) is not a test's waiting time.
        await eventually(
            lambda: all(c.assigned for app in apps for c in app.state.runtime.consumers),
            within=180,
        )
        gateway_settings = GatewaySettings(
            environment="test", **{f"{name}_url": url for name, url in urls.items()}
        )
        gateway_url = await stack.enter_async_context(serve(gateway_app(gateway_settings)))
        client = await stack.enter_async_context(
            httpx.AsyncClient(base_url=gateway_url, timeout=15)
        )
        yield System(gateway=client, infra=infra)


async def test_the_gateway_reports_every_service_green(system: System) -> None:
    response = await system.gateway.get("/healthz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["services"]) == set(SERVICES)
    assert all(s["status"] == "ok" for s in body["services"].values())


async def test_a_registered_customer_reaches_tagging_in_one_trace(system: System, spans) -> None:
    tenant = {"X-Tenant-Id": "e2e-shop"}
    created = await system.gateway.post(
        "/api/v1/customer/customers",
        json={"display_name": "Han Meimei", "source_channel": "mini_program"},
        headers=tenant,
    )
    assert created.status_code == 201, created.text
    customer_id = created.json()["id"]

    profile = await eventually(
        lambda: system.gateway.get(
            f"/api/v1/tagging/customers/{customer_id}/profile", headers=tenant
        ),
        until=lambda r: r.status_code == 200,
    )
    assert profile.json()["display_name"] == "Han Meimei"

    # The gateway's request, the customer service's handling, the relay's publish and
    # tagging's consumption share one trace id.
    def consumer_spans():
        return [s for s in spans.get_finished_spans() if s.name == "consume scrm.customer.events"]

    await eventually(consumer_spans, until=lambda found: len(found) > 0)
    traces_with_consume = {s.context.trace_id for s in consumer_spans()}
    gateway_posts = [
        s
        for s in spans.get_finished_spans()
        if s.kind.name == "SERVER" and s.attributes.get("http.route", "").startswith("/api/v1/")
    ]
    assert any(s.context.trace_id in traces_with_consume for s in gateway_posts)


async def test_bad_input_through_the_gateway_is_a_problem_and_writes_nothing(
    system: System,
) -> None:
    tenant = {"X-Tenant-Id": "e2e-bad-input"}
    response = await system.gateway.post(
        "/api/v1/customer/customers",
        json={"display_name": {"$gt": ""}, "source_channel": "store"},
        headers=tenant,
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == "display_name"
    assert response.json()["instance"] == "/api/v1/customer/customers"  # the public path
    listing = await system.gateway.get("/api/v1/customer/customers", headers=tenant)
    assert listing.json()["items"] == []


async def test_the_merged_openapi_names_every_service(system: System) -> None:
    response = await system.gateway.get("/api/v1/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/v1/customer/customers" in paths
    assert "/api/v1/tagging/customers/{customer_id}/profile" in paths


async def test_every_published_event_matches_its_contract(system: System) -> None:
    """Reads back everything the services published and validates it against contracts."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=system.infra.kafka_bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    try:
        envelopes = await _read_all(consumer, [str(t) for t in Topic])
    finally:
        await consumer.stop()
    published = [e for e in envelopes if e.source.startswith("/services/")]
    assert published, "the services published nothing"
    for envelope in published:
        event_class(envelope.type).model_validate(envelope.data)


async def _read_all(consumer: AIOKafkaConsumer, topics: list[str]) -> list[Envelope]:
    tps = [
        TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())
    ]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    ends = await consumer.end_offsets(tps)
    envelopes: list[Envelope] = []
    while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
        batches = await consumer.getmany(*tps, timeout_ms=500)
        for records in batches.values():
            envelopes.extend(Envelope.from_bytes(r.value) for r in records if r.value)
    return envelopes


async def register(system: System, tenant: dict[str, str], name: str, mobile: str) -> str:
    """A customer registered at the customer service through the gateway; their id."""
    body = {"display_name": name, "source_channel": "store", "mobile": mobile}
    response = await system.gateway.post("/api/v1/customer/customers", json=body, headers=tenant)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_tagging_follows_stages_merges_and_erasure(system: System) -> None:
    """Tagging's portrait counts active customers by stage, kept from customer events."""
    tenant = {"X-Tenant-Id": "e2e-portrait"}
    customer_api = "/api/v1/customer"
    buyer, duplicate, leaving = (
        await register(system, tenant, "Li Na", "13811110001"),
        await register(system, tenant, "Li Na (old card)", "13811110002"),
        await register(system, tenant, "Zhou Jie", "13811110003"),
    )
    order = {
        "order_id": "e2e-portrait-1",
        "customer_id": buyer,
        "amount": 9_900,
        "lines": [{"line_id": "1", "sku": "TEE", "quantity": 1, "amount": 9_900}],
        "paid_at": "2026-11-01T10:00:00Z",
    }
    paid = await system.gateway.post(f"{customer_api}/orders/paid", json=order, headers=tenant)
    assert paid.status_code == 201, paid.text
    merged = await system.gateway.post(
        f"{customer_api}/customers/{buyer}/merge",
        json={"merged_id": duplicate, "reason": "same person"},
        headers=tenant,
    )
    assert merged.status_code == 201, merged.text
    erased = await system.gateway.post(f"{customer_api}/customers/{leaving}/erase", headers=tenant)
    assert erased.status_code == 200, erased.text

    portrait = await eventually(
        lambda: system.gateway.get("/api/v1/tagging/portrait", headers=tenant),
        until=lambda r: (
            r.json()["customers"] == 1 and r.json()["by_lifecycle_stage"].get("customer") == 1
        ),
    )
    stages = {k: v for k, v in portrait.json()["by_lifecycle_stage"].items() if v}
    assert stages == {"customer": 1}
    # The profile follows the erasure through its own consumer, not the portrait's.
    gone = await eventually(
        lambda: system.gateway.get(f"/api/v1/tagging/customers/{leaving}/profile", headers=tenant),
        until=lambda r: r.status_code == 404,
    )
    assert gone.status_code == 404


async def test_a_segment_built_and_kept_current_through_the_gateway(system: System) -> None:
    """Orders reported to the customer service reach a segment of tagging: its build finds the
    first buyer, and a later buyer joins it live."""
    tenant = {"X-Tenant-Id": "e2e-segments"}
    customer_api, tagging_api = "/api/v1/customer", "/api/v1/tagging"

    async def buyer(n: int) -> str:
        body = {"display_name": f"Buyer {n}", "source_channel": "app", "mobile": f"1390000{n:04d}"}
        created = await system.gateway.post(f"{customer_api}/customers", json=body, headers=tenant)
        assert created.status_code == 201, created.text
        order = {
            "order_id": f"e2e-seg-{n}",
            "customer_id": created.json()["id"],
            "amount": 50_000,
            "lines": [{"line_id": "1", "sku": "BAG", "quantity": 1, "amount": 50_000}],
            "paid_at": "2026-11-20T10:00:00Z",
        }
        paid = await system.gateway.post(f"{customer_api}/orders/paid", json=order, headers=tenant)
        assert paid.status_code == 201, paid.text
        return str(created.json()["id"])

    async def members(segment_id: str) -> set[str]:
        page = await system.gateway.get(
            f"{tagging_api}/segments/{segment_id}/members", headers=tenant
        )
        return {m["customer_id"] for m in page.json()["items"]}

    first = await buyer(1)
    rule = {"field": "total_amount", "op": "gte", "value": 50_000}
    await eventually(
        lambda: system.gateway.post(
            f"{tagging_api}/segments/estimate", json={"rule": rule}, headers=tenant
        ),
        until=lambda r: r.status_code == 200 and r.json()["count"] == 1,
    )
    created = await system.gateway.post(
        f"{tagging_api}/segments", json={"name": "big bags", "rule": rule}, headers=tenant
    )
    assert created.status_code == 201, created.text
    segment_id = created.json()["segment_id"]
    await eventually(lambda: members(segment_id), until=lambda m: m == {first})
    second = await buyer(2)
    await eventually(lambda: members(segment_id), until=lambda m: m == {first, second})


async def test_a_merge_at_the_customer_service_moves_points_and_coupons_and_is_undone(
    system: System,
) -> None:
    """One merge made through the gateway reaches loyalty and coupon over the broker: the
    duplicate's points and coupon follow the survivor, and the undo brings them back."""
    tenant = {"X-Tenant-Id": "e2e-merges", "X-Actor-Id": "ops-1"}
    base = str(system.gateway.base_url)
    async with httpx.AsyncClient(base_url=f"{base}/api/v1/coupon", headers=tenant) as coupon:
        batch = (await running_batches(coupon, batch_spec()))["main"]
        survivor = await register(system, tenant, "Chen Jing", "13700000001")
        duplicate = await register(system, tenant, "Chen Jing (old card)", "13700000002")
        coupon_id = (await ok(claim(coupon, batch, duplicate), 201))["id"]
        adjustment = {"points": 300, "reason": "welcome"}
        credited = await system.gateway.post(
            f"/api/v1/loyalty/customers/{duplicate}/points/adjustments",
            json=adjustment,
            headers={**tenant, "Idempotency-Key": f"welcome-{duplicate}"},
        )
        assert credited.status_code == 201, credited.text

        merge = await system.gateway.post(
            f"/api/v1/customer/customers/{survivor}/merge",
            json={"merged_id": duplicate, "reason": "same person"},
            headers=tenant,
        )
        assert merge.status_code == 201, merge.text

        async def holdings(customer: str) -> tuple[set[str], int]:
            wallet = await ok(coupon.get(f"/customers/{customer}/coupons"))
            points = await system.gateway.get(
                f"/api/v1/loyalty/customers/{customer}/points", headers=tenant
            )
            return {c["id"] for c in wallet["items"]}, points.json()["balance"]

        await eventually(lambda: holdings(survivor), until=lambda h: h == ({coupon_id}, 300))
        assert await holdings(duplicate) == (set(), 0)

        undone = await system.gateway.post(
            f"/api/v1/customer/merges/{merge.json()['id']}/undo", headers=tenant
        )
        assert undone.status_code == 200, undone.text
        await eventually(lambda: holdings(duplicate), until=lambda h: h == ({coupon_id}, 300))
        assert await holdings(survivor) == (set(), 0)
