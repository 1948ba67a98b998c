"""Campaigns to a segment, end to end with the real tagging service answering the member
pages: A/B variants and a holdout, suppressions, progress as a job, the report with
conversions attributed from `customer.order_paid.v1` over the broker; a campaign whose
service is stopped mid-send and started again, every member reached exactly once; and
customer merges read from the broker: a merged-away duplicate is not contacted (until the
merge is undone), its touches (and those of customers merged into it) count for the
survivor's orders, whichever of the merge and the duplicate's events comes first."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from contracts import Topic
from contracts.customer import (
    ConsentGranted,
    CustomerRegistered,
    CustomersMerged,
    OrderLine,
    OrderPaid,
)
from servicekit.consumer import PROCESSED
from services.reach.main import create_app
from services.reach.providers.sandbox import SANDBOX
from services.reach.settings import ReachSettings
from services.reach.store.audience import CONSENTS, PROFILES
from services.reach.store.campaigns import CONVERSIONS
from services.reach.store.messages import MESSAGES
from services.tagging.main import create_app as create_tagging
from services.tagging.settings import TaggingSettings
from services.tagging.store.snapshots import Snapshot, SnapshotStore
from tests.reach.support import Service, consent, customer_id, policy, publish, send, template
from tests.support.events import published
from tests.support.merges import merged, unmerged
from tests.support.running import RunningService
from tests.support.servers import serve
from tests.support.settings import settings_for
from tests.support.waiting import eventually

FINISHED = {"succeeded", "failed", "cancelled"}
Tagging = RunningService[TaggingSettings]


@pytest.fixture(scope="module")
async def tagging(infra: Any) -> AsyncIterator[Tagging]:
    settings = settings_for(TaggingSettings, infra, uuid.uuid4().hex[:10])
    app = create_tagging(settings)
    async with serve(app) as url:
        yield Tagging(url, app, settings)


@pytest.fixture(scope="module")
def overrides(tagging: Tagging) -> dict[str, Any]:
    return {"tagging_base_url": tagging.url, "consumer_groups": {"reach.customer"}}


async def snapshot(tagging: Tagging, tenant: str, members: list[str]) -> tuple[str, str]:
    """A frozen member list in the tagging service, as a segment build leaves it."""
    segment_id, snapshot_id = f"seg_{uuid.uuid4().hex}", f"snp_{uuid.uuid4().hex}"
    taken = Snapshot(
        snapshot_id=snapshot_id,
        tenant=tenant,
        segment_id=segment_id,
        build_id="b1",
        rule_version=1,
        count=len(members),
        taken_at=datetime.now(UTC),
    )
    await SnapshotStore(tagging.db).write(taken, sorted(members))
    return segment_id, snapshot_id


def campaign_body(segment_id: str, snapshot_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": "双十一预热",
        "channel": "sms",
        "audience": {"segment_id": segment_id, "snapshot_id": snapshot_id},
        "variants": [
            {"variant_id": "A", "template_id": "welcome"},
            {"variant_id": "B", "template_id": "welcome-b"},
        ],
        "link_url": "https://shop.example/1111",
        "send_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
        **fields,
    }


async def finished(api: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    async def poll() -> dict[str, Any]:
        return (await api.get(f"/jobs/{job_id}")).json()

    return await eventually(poll, until=lambda job: job["state"] in FINISHED, within=90)


def paid(customer: str, order: str, amount: int) -> OrderPaid:
    return OrderPaid(
        customer_id=customer,
        order_id=order,
        amount=amount,
        currency="CNY",
        lines=[OrderLine(line_id="l1", sku="sku1", quantity=1, amount=amount)],
        first_order=False,
        paid_at=datetime.now(UTC),
    )


async def test_a_campaign_splits_variants_and_holdout_and_reports_conversions(
    service: Service, tagging: Tagging, tenant: str, api: httpx.AsyncClient
) -> None:
    await policy(api, caps={"sms": {"per_day": 5, "per_week": 5}})
    await template(api)
    await template(
        api,
        "welcome-b",
        sign_name="品牌商城",
        body="{{customer_name}}, 专属{{coupon_amount}}元券已到账 {{link}}",
    )
    members = [customer_id() for _ in range(300)]
    unreachable = set(members[:20])
    await consent(service, tenant, *[m for m in members if m not in unreachable])
    segment_id, snapshot_id = await snapshot(tagging, tenant, members)

    created = await api.post(
        "/campaigns",
        json=campaign_body(segment_id, snapshot_id, holdout_percent=10, rate_per_second=2000),
    )
    assert created.status_code == 201, created.text
    campaign = created.json()
    assert [v["template_version"] for v in campaign["variants"]] == [1, 1]
    started = await api.post(f"/campaigns/{campaign['campaign_id']}/start")
    assert started.status_code == 202, started.text
    job = await finished(api, started.json()["job_id"])

    assert job["state"] == "succeeded" and job["processed"] == 300
    docs = await service.db[MESSAGES].find({"tenant": tenant}).to_list()
    by_status = Counter(d["status"] for d in docs)
    held = {d["customer_id"] for d in docs if d["status"] == "held_out"}
    assert len(docs) == 300 and 10 <= len(held) <= 55
    received = {
        d["customer_id"] for d in await service.db[SANDBOX].find({"tenant": tenant}).to_list()
    }
    assert received == set(members) - unreachable - held
    assert by_status["suppressed"] == len(unreachable - held)
    variants = Counter(d["variant"] for d in docs if d["status"] == "delivered")
    assert variants["A"] > 60 and variants["B"] > 60

    # Two treated customers and one held-out customer pay: last touch within the window.
    treated = sorted(received)[:2]
    holdout = sorted(held)[0]
    await publish(
        service,
        tenant,
        paid(treated[0], "o1", 12_000),
        paid(treated[1], "o2", 8_000),
        paid(holdout, "o3", 5_000),
    )
    conversions = await eventually(
        lambda: published(service.bootstrap, tenant=tenant, topic=Topic.REACH),
        until=lambda found: sum(e.type == "reach.conversion_attributed.v1" for e in found) == 3,
        within=60,
    )
    report = (await api.get(f"/campaigns/{campaign['campaign_id']}/report")).json()
    groups = {g["group"]: g for g in report["groups"]}
    assert sum(g["members"] for g in groups.values()) == 300
    assert groups["holdout"]["members"] == len(held) and groups["holdout"]["conversions"] == 1
    assert sum(groups[v]["conversions"] for v in "AB") == 2
    assert sum(groups[v]["gmv"] for v in "AB") == 20_000 and groups["holdout"]["gmv"] == 5_000
    assert sum(groups[v]["sent"] for v in "AB") == len(received)
    assert groups["A"]["uplift_points"] is not None
    sent_events = [e for e in conversions if e.type == "reach.message_sent.v1"]
    assert len(sent_events) == len(received)


async def test_bad_campaigns_are_refused(
    service: Service, tenant: str, api: httpx.AsyncClient
) -> None:
    await template(api)
    body = campaign_body("seg_x", "snp_x")
    for wrong in (
        {**body, "holdout_percent": 80},
        {**body, "variants": [{"variant_id": "holdout", "template_id": "welcome"}]},
        {**body, "channel": "email"},
        {**body, "audience": {"segment_id": {"$ne": ""}}},
    ):
        response = await api.post("/campaigns", json=wrong)
        assert response.status_code in (404, 422), response.text
    assert (await api.get("/campaigns")).json() == []


async def test_a_campaign_stopped_mid_send_resumes_and_reaches_everyone_once(
    infra: Any, tagging: Tagging
) -> None:
    tenant = f"t{uuid.uuid4().hex[:10]}"
    settings = settings_for(
        ReachSettings,
        infra,
        uuid.uuid4().hex[:10],
        tagging_base_url=tagging.url,
        dispatch_poll_seconds=0.2,
        consumer_groups=set(),  # no events needed: skip the group joins
    )
    members = [customer_id() for _ in range(1500)]
    segment_id, snapshot_id = await snapshot(tagging, tenant, members)
    headers = {"X-Tenant-Id": tenant}

    first = create_app(settings)
    async with (
        serve(first) as url,
        httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as api,
    ):
        first.state.runtime.state["jobs.poll_seconds"] = 0.2
        db = first.state.runtime.db
        running = RunningService(url, first, settings)
        await policy(api, caps={"sms": {"per_day": 5, "per_week": 5}})
        await template(api)
        await template(api, "welcome-b")
        await consent(running, tenant, *members)
        # Due now: the scheduler starts it.
        due = campaign_body(segment_id, snapshot_id, rate_per_second=600, send_at=None)
        campaign = (await api.post("/campaigns", json=due)).json()
        running_campaign = await eventually(
            lambda: api.get(f"/campaigns/{campaign['campaign_id']}"),
            until=lambda r: r.json()["state"] == "running",
        )
        job_id = running_campaign.json()["job_id"]
        await eventually(
            lambda: db[SANDBOX].count_documents({"tenant": tenant}), until=lambda n: n >= 300
        )
    # The service stopped while the campaign was sending.
    second = create_app(settings)
    async with (
        serve(second) as url,
        httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as api,
    ):
        second.state.runtime.state["jobs.poll_seconds"] = 0.2
        db = second.state.runtime.db
        interrupted = await db[SANDBOX].count_documents({"tenant": tenant})
        assert 300 <= interrupted < 1500
        job = await finished(api, job_id)
        assert job["state"] == "succeeded"
        received = Counter(
            d["customer_id"] for d in await db[SANDBOX].find({"tenant": tenant}).to_list()
        )
        assert set(received) == set(members) and set(received.values()) == {1}
        statuses = Counter(
            d["status"] for d in await db[MESSAGES].find({"tenant": tenant}).to_list()
        )
        assert statuses == {"delivered": 1500}
        events = await eventually(
            lambda: published(settings.kafka_bootstrap_servers, tenant=tenant, topic=Topic.REACH),
            until=lambda found: sum(e.type == "reach.message_sent.v1" for e in found) >= 1500,
        )
        sent = Counter(e.data["customer_id"] for e in events if e.type == "reach.message_sent.v1")
        assert set(sent.values()) == {1}


async def merged_away(service: Service, tenant: str, customer: str, away: bool = True) -> None:
    """Wait until reach has read that `customer` is (or no longer is) merged away."""
    await eventually(
        lambda: service.db[PROFILES].find_one({"_id": f"{tenant}/{customer}"}),
        until=lambda doc: doc is not None and bool(doc.get("merged_into")) is away,
    )


async def test_a_merged_away_duplicate_is_not_contacted_until_the_merge_is_undone(
    service: Service, tagging: Tagging, tenant: str, api: httpx.AsyncClient
) -> None:
    await policy(api, caps={"sms": {"per_day": 5, "per_week": 5}})
    await template(api)
    survivor, duplicate = customer_id(), customer_id()
    await consent(service, tenant, survivor, duplicate)
    # The segment was frozen while they were still two customers.
    segment_id, snapshot_id = await snapshot(tagging, tenant, [survivor, duplicate])
    # Published twice (two envelopes, so not caught by the event-id dedupe): kept once.
    merge = merged(survivor, duplicate)
    await publish(service, tenant, merge, merge)
    await eventually(
        lambda: service.db[PROCESSED].count_documents(
            {"tenant": tenant, "type": CustomersMerged.type}
        ),
        until=lambda n: n == 2,
    )
    profile = await service.db[PROFILES].find_one({"_id": f"{tenant}/{duplicate}"})
    assert profile is not None and len(profile["merged_into"]) == 1

    body = campaign_body(
        segment_id, snapshot_id, variants=[{"variant_id": "A", "template_id": "welcome"}]
    )
    created = await api.post("/campaigns", json=body)
    assert created.status_code == 201, created.text
    started = await api.post(f"/campaigns/{created.json()['campaign_id']}/start")
    job = await finished(api, started.json()["job_id"])

    assert job["state"] == "succeeded" and job["result"]["suppressed"] == {"merged": 1}, job
    outcome = {
        d["customer_id"]: (d["status"], d.get("reason"))
        for d in await service.db[MESSAGES].find({"tenant": tenant}).to_list()
    }
    assert outcome == {survivor: ("delivered", None), duplicate: ("suppressed", "merged")}
    assert (await send(api, duplicate))["reason"] == "merged"  # a single send is refused too

    await publish(service, tenant, unmerged(merge))
    await merged_away(service, tenant, duplicate, away=False)
    assert (await send(api, duplicate))["status"] == "delivered"


async def test_caps_count_what_reached_the_person_under_the_duplicates_id(
    service: Service, tenant: str, api: httpx.AsyncClient
) -> None:
    await policy(api, caps={"sms": {"per_day": 1, "per_week": 5}})
    await template(api)
    survivor, duplicate = customer_id(), customer_id()
    await consent(service, tenant, survivor, duplicate)
    assert (await send(api, duplicate))["status"] == "delivered"
    merge = merged(survivor, duplicate)
    await publish(service, tenant, merge)
    await merged_away(service, tenant, duplicate)
    # One message a day: the person had theirs this morning, under the duplicate's id.
    assert (await send(api, survivor))["reason"] == "frequency_cap_day"

    await publish(service, tenant, unmerged(merge))
    await merged_away(service, tenant, duplicate, away=False)
    assert (await send(api, survivor))["status"] == "delivered"


async def test_the_survivors_order_is_attributed_to_a_touch_of_its_duplicate(
    service: Service, tenant: str, api: httpx.AsyncClient
) -> None:
    await policy(api, caps={"sms": {"per_day": 5, "per_week": 5}})
    await template(api)
    survivor, duplicate = customer_id(), customer_id()
    await consent(service, tenant, duplicate)
    touch = await send(api, duplicate)
    assert touch["status"] == "delivered"

    # Both keyed by the survivor: the merge is read before the order.
    merge = merged(survivor, duplicate)
    await publish(service, tenant, merge, paid(survivor, "o1", 9_900))

    conversion = await eventually(
        lambda: service.db[CONVERSIONS].find_one({"_id": f"{tenant}/o1"}),
        until=lambda doc: doc is not None,
    )
    assert conversion["message_id"] == touch["message_id"]
    assert conversion["customer_id"] == survivor and conversion["amount"] == 9_900
    # The survivor's history shows what reached the same person under the duplicate's id.
    history = (await api.get(f"/customers/{survivor}/messages")).json()
    assert [m["message_id"] for m in history] == [touch["message_id"]]

    # Undone: the survivor's next order owes nothing to the restored customer's message.
    await publish(service, tenant, unmerged(merge), paid(survivor, "o2", 500))
    await eventually(
        lambda: service.db[PROCESSED].count_documents({"tenant": tenant, "type": OrderPaid.type}),
        until=lambda n: n == 2,
    )
    assert await service.db[CONVERSIONS].find_one({"_id": f"{tenant}/o2"}) is None
    assert (await api.get(f"/customers/{survivor}/messages")).json() == []


async def test_a_touch_of_a_customer_merged_through_another_merge_counts(
    service: Service, tenant: str, api: httpx.AsyncClient
) -> None:
    await policy(api)
    await template(api)
    survivor, duplicate, earlier = customer_id(), customer_id(), customer_id()
    await consent(service, tenant, earlier)
    touch = await send(api, earlier)
    # `earlier` was merged into `duplicate`, which is then merged into `survivor`.
    await publish(service, tenant, merged(duplicate, earlier))
    await merged_away(service, tenant, earlier)
    await publish(service, tenant, merged(survivor, duplicate), paid(survivor, "o1", 300))

    conversion = await eventually(
        lambda: service.db[CONVERSIONS].find_one({"_id": f"{tenant}/o1"}),
        until=lambda doc: doc is not None,
    )
    assert conversion["message_id"] == touch["message_id"]


async def test_a_merge_read_before_the_duplicates_own_events_still_holds(
    service: Service, tenant: str, api: httpx.AsyncClient
) -> None:
    await policy(api, caps={"sms": {"per_day": 5, "per_week": 5}})
    await template(api)
    survivor, duplicate = customer_id(), customer_id()
    await publish(service, tenant, merged(survivor, duplicate))
    await merged_away(service, tenant, duplicate)

    # The duplicate's registration and consent (keyed by the duplicate) come after.
    registered = CustomerRegistered(
        customer_id=duplicate,
        display_name="林小姐",
        source_channel="store",
        lifecycle_stage="customer",
        registered_at=datetime.now(UTC),
    )
    granted = ConsentGranted(
        customer_id=duplicate,
        channel="sms",
        purpose="marketing",
        source="api",
        granted_at=datetime.now(UTC),
    )
    await publish(service, tenant, registered, granted)
    await eventually(
        lambda: service.db[CONSENTS].find_one({"tenant": tenant, "customer_id": duplicate}),
        until=lambda doc: doc is not None,
    )
    profile = await service.db[PROFILES].find_one({"_id": f"{tenant}/{duplicate}"})
    assert profile is not None and profile["display_name"] == "林小姐"

    message = await send(api, duplicate)
    assert message["status"] == "suppressed" and message["reason"] == "merged"
