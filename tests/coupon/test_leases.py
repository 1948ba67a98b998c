"""Stock leased by a replica that dies is not stranded: the replica's heartbeat stops, a
sweep on another replica returns what its lease held unissued (leased - issued, counted in
the claim transactions), and the batch still issues exactly its stock over both replicas,
never more. A replica whose lease was swept while it was alive issues nothing under it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.coupon.support import Crowd, Service, batch_spec, claim, ok, running_batches
from tests.support.servers import free_port
from tests.support.waiting import eventually

FAST_LEASES = {
    "lease_heartbeat_seconds": 0.2,
    "lease_ttl_seconds": 2.0,
    "lease_sweep_seconds": 0.3,
    "sold_out_recheck_seconds": 0.3,
    "stock_lease_block": 20,
}
LAUNCH = """
import json, sys, uvicorn
from services.coupon.main import create_app
from services.coupon.settings import CouponSettings
settings = CouponSettings(**json.loads(sys.argv[1]))
uvicorn.run(create_app(settings), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


@pytest.fixture(scope="module")
def overrides() -> dict[str, Any]:
    return {**FAST_LEASES, "consumer_groups": set()}


class Replica:
    """Another replica of the service in its own process, so it can be killed outright."""

    def __init__(self, process: asyncio.subprocess.Process, url: str) -> None:
        self.process = process
        self.url = url

    def kill(self) -> None:
        """SIGKILL: no shutdown, no hand-back, no last heartbeat."""
        self.process.send_signal(signal.SIGKILL)


@pytest.fixture
async def replica(service: Service) -> AsyncIterator[Replica]:
    s = service.settings
    settings = {
        "environment": "test",
        "kafka_bootstrap_servers": s.kafka_bootstrap_servers,
        "mongodb_uri": s.mongodb_uri,
        "mongodb_database": s.mongodb_database,
        "kafka_group_prefix": s.kafka_group_prefix + "killed.",
        "customer_claims_per_minute": 100_000,
        "channel_claims_per_second": 100_000,
        "consumer_groups": [],  # no order events here: a faster start
        **FAST_LEASES,
    }
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LAUNCH, json.dumps(settings), str(port),
        cwd=os.getcwd(),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    async def ready() -> bool:
        try:
            async with httpx.AsyncClient(base_url=url) as probe:
                return (await probe.get("/healthz")).status_code == 200
        except httpx.TransportError:
            return False

    try:
        await eventually(ready, within=90)
        yield Replica(process, url)
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def stock_accounts(service: Service, batch_id: str) -> dict[str, int]:
    """Where the batch's stock is: coupons written, unleased, and held unissued by leases
    still active (their `issued` counts must add up to the coupons written)."""
    db = service.db
    batch = await db["batches"].find_one({"_id": batch_id})
    leases = await db["stock_leases"].find({"batch_id": batch_id}).to_list()
    return {
        "coupons": await db["coupons"].count_documents({"batch_id": batch_id}),
        "unleased": batch["unleased"],
        "held": sum(x["leased"] - x["issued"] for x in leases if x["state"] == "active"),
        "counted": sum(x["issued"] for x in leases),
        "active_leases": sum(1 for x in leases if x["state"] == "active"),
    }


async def test_a_killed_replicas_lease_comes_back_and_the_batch_issues_exactly_its_stock(
    api: httpx.AsyncClient, service: Service, tenant: str, replica: Replica
) -> None:
    stock = 120
    ids = await running_batches(api, batch_spec(stock=stock, per_customer_limit=1))
    path = f"/batches/{ids['main']}/claims"
    crowd = Crowd(replica.url, {"X-Tenant-Id": tenant}, in_flight=50)
    try:
        answers = await asyncio.gather(
            *(crowd.post(path, {"customer_id": f"b_{n}", "channel": "app"}) for n in range(30))
        )
    finally:
        await crowd.close()
    won_at_b = [r.json()["id"] for r in answers if r.status_code == 201]
    assert len(won_at_b) == 30
    at_a = [await claim(api, ids["main"], f"a_{n}") for n in range(5)]
    assert {r.status_code for r in at_a} == {201}
    before = await stock_accounts(service, ids["main"])
    assert before["held"] > 0, before  # replica B leased more than it issued
    assert before["coupons"] + before["unleased"] + before["held"] == stock

    replica.kill()
    await replica.process.wait()

    async def b_lease_returned() -> dict[str, int]:
        return await stock_accounts(service, ids["main"])

    await eventually(
        b_lease_returned, until=lambda a: a["active_leases"] == 1, within=30
    )  # only A's lease is left
    # Read again now that nothing moves: the reads above are not one snapshot, so the one
    # that saw the lease returned may have read the batch's stock just before it came back.
    after = await stock_accounts(service, ids["main"])
    assert after["coupons"] + after["unleased"] + after["held"] == stock
    assert after["counted"] == after["coupons"] == 35

    # A now sells everything that is left, and not one coupon more.
    issued: list[str] = []

    async def claim_until_sold_out() -> bool:
        n = len(issued)
        wave = await asyncio.gather(*(claim(api, ids["main"], f"late_{n}_{k}") for k in range(40)))
        issued.extend(r.json()["id"] for r in wave if r.status_code == 201)
        assert {r.status_code for r in wave} <= {201, 409}
        return len(issued) + 35 >= stock

    await eventually(claim_until_sold_out, within=30)
    final = await stock_accounts(service, ids["main"])
    assert final["coupons"] == stock == 35 + len(issued)
    refused = await claim(api, ids["main"], "too_late")
    assert (refused.status_code, refused.json()["code"]) == (409, "sold_out")
    stored = {
        d["_id"] for d in await service.db["coupons"].find({"batch_id": ids["main"]}).to_list()
    }
    assert set(won_at_b) <= stored  # every success answered by the killed replica stands
    assert final["counted"] == stock


async def test_a_replica_whose_lease_was_swept_while_alive_issues_nothing_under_it(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    """A sweep (as another replica would, once this one's heartbeat looked stale) closes
    the lease between two claims: the next claim finds it closed, leases afresh, and the
    units are counted once."""
    stock = 50
    ids = await running_batches(api, batch_spec(stock=stock, per_customer_limit=1))
    await ok(claim(api, ids["main"], "cus_0"), 201)
    desk = service.runtime.state["claim_desk"]
    issuer = desk.issuer(tenant, ids["main"])
    swept = issuer.lease_id
    assert issuer.lease > 0 and swept is not None
    assert await desk.close_lease(swept) == issuer.lease
    assert await desk.close_lease(swept) is None  # once
    answers = await asyncio.gather(*(claim(api, ids["main"], f"cus_{n}") for n in range(1, 60)))
    assert sum(r.status_code == 201 for r in answers) == stock - 1
    old = await service.db["stock_leases"].find_one({"_id": swept})
    assert (old["state"], old["issued"]) == ("returned", 1)
    final = await stock_accounts(service, ids["main"])
    assert final["coupons"] == final["counted"] == stock
    assert final["unleased"] == final["held"] == 0
