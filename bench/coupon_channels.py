"""Coupon issuing channels: a targeted issue to a segment, on-site drop checks, and claim
centre visits, over HTTP to the coupon service (and the tagging service answering the
member pages), as ratios against the store's raw rates measured in the same run.

    python -m bench.coupon_channels [--members N] [--checks C] [--visits V] [--in-flight K]
                                    [--external]

What is timed:
- a targeted issue of a batch of `--members` coupons to a segment snapshot of as many
  members: from the POST to the job's success (pages of 200 members read from the tagging
  service, each issued in one claim round); members/s against the raw single-write and
  batched-insert rates. It asserts exactly `--members` coupons, one per member;
- `--checks` distinct customers each checking a login drop rule that always drops (once a
  day), `--in-flight` at a time: checks/s and p50/p99; then as many checks no rule matches
  (the cheap path); it asserts exactly one coupon per customer;
- `--visits` claim centre visits by distinct customers over 20 open batches: visits/s and
  p50/p99."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from pymongo import AsyncMongoClient

from bench.coupon_claims import _drop, _ms, uvicorn
from bench.raw_capacity import (
    format_table,
    infrastructure_arguments,
    rates,
    run_benchmark,
    run_raw_capacity,
)
from devstack import free_ports
from services.tagging.store.snapshots import Snapshot, SnapshotStore

DEFAULT_MEMBERS = 20_000
DEFAULT_CHECKS = 2_000
DEFAULT_VISITS = 2_000
DEFAULT_IN_FLIGHT = 100
TENANT = "bench-channels"
RESULTS_PATH = Path(__file__).parent / "results" / "coupon_channels.json"


async def _timed(
    calls: list[Any], in_flight: int
) -> tuple[float, list[float], list[httpx.Response]]:
    """Run the request factories `in_flight` at a time: seconds, latencies, answers."""
    gate = asyncio.Semaphore(in_flight)
    latencies: list[float] = []
    answers: list[httpx.Response] = []

    async def one(call: Any) -> None:
        async with gate:
            started = time.perf_counter()
            answers.append(await call())
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(one(c) for c in calls))
    return time.perf_counter() - started, latencies, answers


async def _post(api: httpx.AsyncClient, path: str, body: dict[str, Any] | None) -> Any:
    response = await api.post(path, json=body)
    assert response.status_code in (200, 201, 202), response.text
    return response.json()


async def running_batches(api: httpx.AsyncClient, stocks: dict[str, int]) -> dict[str, str]:
    """A budget and a running campaign with one batch per key: batch ids by key."""
    now = dt.datetime.now(dt.UTC)
    budget = await _post(api, "/budgets", {
        "name": "bench", "owner_kind": "department", "owner": "growth",
        "amount": sum(stocks.values()) * 4_000, "starts_at": now.isoformat(),
        "ends_at": (now + dt.timedelta(days=30)).isoformat(),
    })  # fmt: skip
    batches = [
        {
            "key": key,
            "name": f"bench {key}",
            "discount": {"kind": "threshold", "amount": 1_000, "threshold": 10_000},
            "claim_from": (now - dt.timedelta(minutes=1)).isoformat(),
            "claim_until": (now + dt.timedelta(days=1)).isoformat(),
            "validity": {"days_after_claim": 7},
            "stock": stock,
        }
        for key, stock in stocks.items()
    ]
    campaign = await _post(
        api, "/campaigns", {"name": "bench", "budget_id": budget["id"], "batches": batches}
    )
    for step in ("submit", "approve", "start"):
        answer = await _post(api, f"/campaigns/{campaign['id']}/{step}", None)
    return dict(answer["batch_ids"])


async def _snapshot(mongodb_uri: str, database: str, members: list[str]) -> tuple[str, str]:
    """A frozen member list in the tagging service's store, as a segment build leaves it."""
    segment_id, snapshot_id = f"seg_{uuid.uuid4().hex}", f"snp_{uuid.uuid4().hex}"
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri, tz_aware=True)
    try:
        taken = Snapshot(
            snapshot_id=snapshot_id, tenant=TENANT, segment_id=segment_id, build_id="bench",
            rule_version=1, count=len(members), taken_at=dt.datetime.now(dt.UTC),
        )  # fmt: skip
        await SnapshotStore(client[database]).write(taken, sorted(members))
    finally:
        await client.close()
    return segment_id, snapshot_id


async def _targeted(
    api: httpx.AsyncClient, mongodb_uri: str, tagging_db: str, members: int
) -> tuple[float, dict[str, Any]]:
    ids = await running_batches(api, {"segment": members})
    customers = [f"cus_{n:07d}" for n in range(members)]
    segment_id, snapshot_id = await _snapshot(mongodb_uri, tagging_db, customers)
    body = {"segment_id": segment_id, "snapshot_id": snapshot_id}
    started = time.perf_counter()
    job = await _post(api, f"/batches/{ids['segment']}/targeted-issues", body)
    while job["state"] not in ("succeeded", "failed", "cancelled"):
        await asyncio.sleep(0.1)
        job = (await api.get(f"/jobs/{job['id']}")).json()
    seconds = time.perf_counter() - started
    assert job["state"] == "succeeded", job
    assert job["result"] == {"members": members, "issued": members, "refused": {}}, job
    return seconds, job


async def run_channels(bootstrap: str, mongodb_uri: str, args: argparse.Namespace) -> dict:
    raw = await run_raw_capacity(bootstrap, mongodb_uri, messages=2_000, docs=1_000)
    raw_rates = rates(raw)
    print(format_table(raw), flush=True)
    run_id = uuid.uuid4().hex[:8]
    coupon_db, tagging_db = f"bench_channels_{run_id}", f"bench_channels_tagging_{run_id}"
    tagging_port, coupon_port = free_ports(2)
    shared = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "MONGODB_URI": mongodb_uri,
        "KAFKA_GROUP_PREFIX": f"bench-{run_id}.",
        "LOG_LEVEL": "WARNING",
    }
    coupon_env = {
        **shared,
        "COUPON_MONGODB_DATABASE": coupon_db,
        "COUPON_TAGGING_BASE_URL": f"http://127.0.0.1:{tagging_port}",
        "COUPON_CONSUMER_GROUPS": "[]",
        "COUPON_CUSTOMER_CLAIMS_PER_MINUTE": "1000000",
        "COUPON_CHANNEL_CLAIMS_PER_SECOND": "1000000",
    }
    headers = {"X-Tenant-Id": TENANT, "X-Actor-Roles": "budget_approver", "X-Actor-Id": "ops"}
    limits = httpx.Limits(max_connections=args.in_flight, max_keepalive_connections=args.in_flight)
    tagging_env = {**shared, "TAGGING_MONGODB_DATABASE": tagging_db}
    with (
        uvicorn("services.tagging.main:create_app", tagging_port, tagging_env),
        uvicorn("services.coupon.main:create_app", coupon_port, coupon_env) as coupon,
    ):
        async with httpx.AsyncClient(
            base_url=coupon.url, headers=headers, timeout=600, limits=limits
        ) as api:
            # The targeted issue last: the work its 10,000 claims leave behind (events
            # relayed, alerts evaluated) would load the other measurements.
            drops = await _drops(api, args)
            print(drops, flush=True)
            visits = await _visits(api, args)
            print(visits, flush=True)
            targeted_s, _ = await _targeted(api, mongodb_uri, tagging_db, args.members)
            print(f"targeted issue to {args.members:,} members in {targeted_s:.2f} s", flush=True)
    coupons = await _count(mongodb_uri, coupon_db)
    assert coupons == args.members + args.checks, coupons
    await _drop(mongodb_uri, coupon_db, tagging_db)
    per_s = args.members / targeted_s
    targeted = {
        "members": args.members,
        "seconds": round(targeted_s, 2),
        "members_per_s": round(per_s, 1),
        "vs_raw_insert_one": round(per_s / raw_rates["store_insert_one"], 2),
        "vs_raw_insert_many": round(per_s / raw_rates["store_insert_many"], 2),
    }
    print(targeted, flush=True)
    return {
        "benchmark": "coupon_channels",
        "run_at": dt.datetime.now(dt.UTC).isoformat(),
        "infrastructure": "external" if args.external else "embedded (tansu + SecantusDB)",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "parameters": {
            "members": args.members,
            "checks": args.checks,
            "visits": args.visits,
            "in_flight": args.in_flight,
        },
        "raw_rates_per_s": raw_rates,
        "targeted": targeted,
        "drops": drops,
        "claim_centre": visits,
    }


async def _drops(api: httpx.AsyncClient, args: argparse.Namespace) -> dict[str, Any]:
    ids = await running_batches(api, {"drop": args.checks})
    now = dt.datetime.now(dt.UTC)
    await _post(api, "/drop-rules", {
        "name": "bench", "trigger": "login", "batch_id": ids["drop"], "probability_percent": 100,
        "max_per_day": 1, "active_from": (now - dt.timedelta(minutes=1)).isoformat(),
        "active_until": (now + dt.timedelta(days=1)).isoformat(),
    })  # fmt: skip

    def check(customer: str, trigger: str) -> Any:
        return lambda: api.post("/drops/check", json={"customer_id": customer, "trigger": trigger})

    # No rule matching first: it must cost nothing, and it runs before the drops' claims
    # give the service work in the background (events relayed, alerts evaluated).
    idle = [check(f"d_{n:06d}", "page_open") for n in range(args.checks)]
    idle_s, idle_lat, idle_answers = await _timed(idle, args.in_flight)
    assert all(a.json() == {"dropped": []} for a in idle_answers)
    calls = [check(f"d_{n:06d}", "login") for n in range(args.checks)]
    seconds, latencies, answers = await _timed(calls, args.in_flight)
    dropped = sum(len(a.json()["dropped"]) for a in answers)
    assert dropped == args.checks, dropped
    return {
        "checks": args.checks,
        "checks_per_s": round(args.checks / seconds, 1),
        "p50_ms": _ms(latencies, 0.5),
        "p99_ms": _ms(latencies, 0.99),
        "no_rule_checks_per_s": round(args.checks / idle_s, 1),
        "no_rule_p50_ms": _ms(idle_lat, 0.5),
        "no_rule_p99_ms": _ms(idle_lat, 0.99),
    }


async def _visits(api: httpx.AsyncClient, args: argparse.Namespace) -> dict[str, Any]:
    await running_batches(api, {f"open-{n}": 100 for n in range(20)})
    calls = [
        (lambda c=f"v_{n:06d}": api.get("/claim-centre", params={"customer_id": c}))
        for n in range(args.visits)
    ]
    seconds, latencies, answers = await _timed(calls, args.in_flight)
    assert all(len(a.json()["batches"]) >= 20 for a in answers)
    return {
        "visits": args.visits,
        "visits_per_s": round(args.visits / seconds, 1),
        "p50_ms": _ms(latencies, 0.5),
        "p99_ms": _ms(latencies, 0.99),
    }


async def _count(mongodb_uri: str, database: str) -> int:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri)
    try:
        return await client[database]["coupons"].count_documents({"tenant": TENANT})
    finally:
        await client.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.coupon_channels", description=__doc__)
    parser.add_argument("--members", type=int, default=DEFAULT_MEMBERS)
    parser.add_argument("--checks", type=int, default=DEFAULT_CHECKS)
    parser.add_argument("--visits", type=int, default=DEFAULT_VISITS)
    parser.add_argument("--in-flight", type=int, default=DEFAULT_IN_FLIGHT)
    infrastructure_arguments(parser, RESULTS_PATH)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run_benchmark(args, "bench-channels-", lambda kafka, mongo: run_channels(kafka, mongo, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
