"""Targeted issue (定向投放) end to end with the real tagging service answering the member
pages over HTTP: a segment's members get one coupon each within stock and per-customer
limits, refusals counted by reason in the job; bad requests answered before any job; and a
coupon service stopped mid-issue and started again resumes from its checkpoint, giving
every member exactly one coupon and the stock exactly."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from services.coupon.main import create_app
from services.coupon.settings import CouponSettings
from services.tagging.main import create_app as create_tagging
from services.tagging.settings import TaggingSettings
from services.tagging.store.snapshots import Snapshot, SnapshotStore
from tests.coupon.support import Service, batch_spec, claim, ok, running_batches
from tests.support.running import RunningService
from tests.support.servers import free_port, serve
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
    return {"tagging_base_url": tagging.url, "consumer_groups": set()}


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


async def finished(api: httpx.AsyncClient, job_id: str, within: float = 60) -> dict[str, Any]:
    async def poll() -> dict[str, Any]:
        return await ok(api.get(f"/jobs/{job_id}"))

    return await eventually(poll, until=lambda job: job["state"] in FINISHED, within=within)


async def test_a_segment_gets_one_coupon_each_within_stock_and_limits(
    api: httpx.AsyncClient, service: Service, tagging: Tagging, tenant: str
) -> None:
    members = [f"cus_{n:03d}" for n in range(80)]
    segment_id, snapshot_id = await snapshot(tagging, tenant, members)
    ids = await running_batches(api, batch_spec(stock=60))
    await ok(claim(api, ids["main"], "cus_007"), 201)  # holds one already: its limit
    body = {"segment_id": segment_id, "snapshot_id": snapshot_id}
    answer = await api.post(f"/batches/{ids['main']}/targeted-issues", json=body)
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert answer.headers["Location"] == f"/jobs/{job['id']}"
    assert job["kind"] == "coupon.targeted_issue" and job["created_by"] == "ops-1"

    done = await finished(api, job["id"])
    assert done["state"] == "succeeded"
    assert done["result"] == {
        "members": 80,
        "issued": 59,
        "refused": {"limit_reached": 1, "sold_out": 20},
    }
    assert (done["processed"], done["succeeded"], done["failed"]) == (80, 59, 21)
    coupons = await service.db["coupons"].find({"batch_id": ids["main"]}).to_list()
    assert len(coupons) == 60, "exactly the stock"
    targeted = [c for c in coupons if c["channel"] == "targeted"]
    assert len(targeted) == 59 and {c["customer_id"] for c in targeted} <= set(members)
    assert max(Counter(c["customer_id"] for c in coupons).values()) == 1
    assert {c["reference"] for c in targeted} == {
        f"targeted:{job['id']}:{c['customer_id']}" for c in targeted
    }
    batch = await ok(api.get(f"/batches/{ids['main']}"))
    assert batch["batch"]["unleased"] == 0


async def test_bad_requests_are_answered_before_any_job(
    api: httpx.AsyncClient, tagging: Tagging, tenant: str
) -> None:
    segment_id, snapshot_id = await snapshot(tagging, tenant, ["cus_1"])
    ids = await running_batches(api, batch_spec())
    path = f"/batches/{ids['main']}/targeted-issues"
    unknown = await api.post(path, json={"segment_id": f"seg_{uuid.uuid4().hex}"})
    assert (unknown.status_code, unknown.json()["code"]) == (404, "segment_not_found")
    lost = await api.post(path, json={"segment_id": segment_id, "snapshot_id": "snp_gone"})
    assert (lost.status_code, lost.json()["code"]) == (404, "segment_not_found")
    for body in (
        {"segment_id": "vip"},
        {"segment_id": {"$gt": ""}},
        {"segment_id": segment_id, "extra": 1},
    ):
        assert (await api.post(path, json=body)).status_code == 422
    missing = await api.post("/batches/bat_nope/targeted-issues", json={"segment_id": segment_id})
    assert (missing.status_code, missing.json()["code"]) == (404, "batch_not_found")
    campaign_id = (await ok(api.get(f"/batches/{ids['main']}")))["batch"]["campaign_id"]
    await ok(api.post(f"/campaigns/{campaign_id}/end"))
    ended = await api.post(path, json={"segment_id": segment_id, "snapshot_id": snapshot_id})
    assert (ended.status_code, ended.json()["code"]) == (409, "batch_not_active")
    jobs = await ok(api.get("/jobs", params={"kind": "coupon.targeted_issue"}))
    assert jobs["items"] == [], "no job was submitted"


async def test_an_issue_stopped_mid_way_resumes_and_issues_each_member_once(
    infra: Any, tagging: Tagging
) -> None:
    tenant = f"t{uuid.uuid4().hex[:10]}"
    settings = settings_for(
        CouponSettings,
        infra,
        uuid.uuid4().hex[:10],
        tagging_base_url=tagging.url,
        targeted_page_size=100,
        customer_claims_per_minute=100_000,
        channel_claims_per_second=100_000,
        consumer_groups=set(),  # no events needed: skip the group joins
    )
    members = [f"cus_{uuid.uuid4().hex[:12]}" for _ in range(3000)]
    segment_id, snapshot_id = await snapshot(tagging, tenant, members)
    stock = 2500
    headers = {"X-Tenant-Id": tenant, "X-Actor-Id": "ops-1", "X-Actor-Roles": "budget_approver"}

    first = create_app(settings)
    async with (
        serve(first) as url,
        httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as api,
    ):
        db = first.state.runtime.db
        ids = await running_batches(api, batch_spec(stock=stock))
        batch_id = ids["main"]
        body = {"segment_id": segment_id, "snapshot_id": snapshot_id}
        job = await ok(api.post(f"/batches/{batch_id}/targeted-issues", json=body), 202)
        await eventually(
            lambda: db["coupons"].count_documents({"batch_id": batch_id}),
            until=lambda n: n >= 600,
        )
    # The service stopped while the job was issuing.
    second = create_app(settings)
    async with (
        serve(second) as url,
        httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as api,
    ):
        db = second.state.runtime.db
        interrupted = await db["coupons"].count_documents({"batch_id": batch_id})
        stopped = await ok(api.get(f"/jobs/{job['id']}"))
        assert stopped["state"] not in FINISHED and 600 <= interrupted < stock
        done = await finished(api, job["id"], within=90)
        assert done["state"] == "succeeded"
        assert done["attempts"] >= 2, "the job ran again after the restart"
        assert done["result"] == {
            "members": 3000,
            "issued": stock,
            "refused": {"sold_out": 3000 - stock},
        }
        coupons = await db["coupons"].find({"batch_id": batch_id}).to_list()
        held = Counter(c["customer_id"] for c in coupons)
        assert len(coupons) == stock and set(held.values()) == {1} and set(held) <= set(members)
        batch = await ok(api.get(f"/batches/{batch_id}"))
        assert batch["coupons"] == {"available": stock}
        assert batch["batch"]["unleased"] == 0


def flaky(target: str, failures: int) -> tuple[FastAPI, list[int]]:
    """A hop in front of the real tagging service that answers 503 to the job's first
    `failures` member pages (the check before the job, limit=1, goes through)."""
    app, answered = FastAPI(), []

    @app.get("/{path:path}")
    async def forward(path: str, request: Request) -> Response:
        if request.query_params.get("limit") != "1" and len(answered) < failures:
            answered.append(503)
            return Response(status_code=503)
        async with httpx.AsyncClient() as http:
            upstream = await http.get(
                f"{target}/{path}", params=request.query_params, headers=request.headers
            )
        return Response(upstream.content, upstream.status_code, media_type="application/json")

    return app, answered


async def test_a_tagging_outage_mid_issue_is_waited_out(
    infra: Any, tagging: Tagging, api: httpx.AsyncClient, tenant: str
) -> None:
    members = [f"cus_{n:03d}" for n in range(30)]
    segment_id, snapshot_id = await snapshot(tagging, tenant, members)
    hop, answered = flaky(tagging.url, failures=2)
    async with serve(hop) as hop_url:
        settings = settings_for(
            CouponSettings, infra, uuid.uuid4().hex[:10], tagging_base_url=hop_url,
            consumer_groups=set(),
        )  # fmt: skip
        app = create_app(settings)
        async with (
            serve(app) as url,
            httpx.AsyncClient(base_url=url, headers=dict(api.headers), timeout=60) as flaky_api,
        ):
            ids = await running_batches(flaky_api, batch_spec())
            body = {"segment_id": segment_id, "snapshot_id": snapshot_id}
            job = await ok(
                flaky_api.post(f"/batches/{ids['main']}/targeted-issues", json=body), 202
            )
            done = await finished(flaky_api, job["id"])
    assert answered == [503, 503], "the job met the outage"
    assert done["state"] == "succeeded" and done["result"]["issued"] == 30


LAUNCH = """
import json, sys, uvicorn
from services.coupon.main import create_app
from services.coupon.settings import CouponSettings
settings = CouponSettings(**json.loads(sys.argv[1]))
uvicorn.run(create_app(settings), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""
#: A crashed replica's stock lease is swept back (1 s) before its job's lease lapses (3 s).
FAST_LEASES = {
    "lease_heartbeat_seconds": 0.2,
    "lease_ttl_seconds": 1.0,
    "lease_sweep_seconds": 0.3,
    "job_lease_seconds": 3.0,
    "targeted_page_size": 100,
    "consumer_groups": [],
}


async def test_an_issue_whose_replica_is_killed_resumes_elsewhere_exactly(
    infra: Any, tagging: Tagging
) -> None:
    """SIGKILL: no hand-back of the job or the stock, progress not flushed since the last
    write. Another replica takes the job over when its lease lapses, after the dead one's
    stock came back, and replays the pages past the checkpoint under the same references."""
    tenant = f"t{uuid.uuid4().hex[:10]}"
    settings = settings_for(
        CouponSettings, infra, uuid.uuid4().hex[:10], tagging_base_url=tagging.url,
        customer_claims_per_minute=100_000, channel_claims_per_second=100_000, **FAST_LEASES,
    )  # fmt: skip
    members = [f"cus_{uuid.uuid4().hex[:12]}" for _ in range(3000)]
    segment_id, snapshot_id = await snapshot(tagging, tenant, members)
    stock = 2500
    headers = {"X-Tenant-Id": tenant, "X-Actor-Id": "ops-1", "X-Actor-Roles": "budget_approver"}
    port = free_port()
    doomed = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LAUNCH, settings.model_dump_json(), str(port), cwd=os.getcwd()
    )
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60
        ) as api:

            async def ready() -> bool:
                try:
                    return (await api.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(ready, within=60)
            ids = await running_batches(api, batch_spec(stock=stock))
            body = {"segment_id": segment_id, "snapshot_id": snapshot_id}
            job = await ok(api.post(f"/batches/{ids['main']}/targeted-issues", json=body), 202)
            batch_id = ids["main"]

            async def issued() -> int:
                return (await ok(api.get(f"/batches/{batch_id}")))["coupons"].get("available", 0)

            await eventually(issued, until=lambda n: n >= 600)
        doomed.send_signal(signal.SIGKILL)
        await doomed.wait()
    finally:
        if doomed.returncode is None:
            doomed.kill()
            await doomed.wait()

    survivor = create_app(settings)
    async with (
        serve(survivor) as url,
        httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as api,
    ):
        survivor.state.runtime.state["jobs.poll_seconds"] = 0.2
        db = survivor.state.runtime.db
        at_crash = await db["jobs"].find_one({"_id": job["id"]})
        written = await db["coupons"].count_documents({"batch_id": batch_id})
        assert at_crash["state"] == "running" and 600 <= written < stock
        checkpointed = (at_crash.get("checkpoint") or {}).get("issued", 0)
        assert checkpointed <= written, "the checkpoint never runs ahead of the coupons"
        done = await finished(api, job["id"], within=90)
        assert done["state"] == "succeeded" and done["attempts"] == 2
        assert done["result"] == {
            "members": 3000,
            "issued": stock,
            "refused": {"sold_out": 3000 - stock},
        }
        coupons = await db["coupons"].find({"batch_id": batch_id}).to_list()
        held = Counter(c["customer_id"] for c in coupons)
        assert len(coupons) == stock and set(held.values()) == {1}
        batch = await ok(api.get(f"/batches/{batch_id}"))
        assert batch["batch"]["unleased"] == 0
