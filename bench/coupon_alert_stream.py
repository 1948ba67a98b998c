"""Coupon alert stream: how long an alert takes from the change that causes it to every
open stream of the ops console, through the real broker.

    python -m bench.coupon_alert_stream [--subscribers N] [--rounds R] [--external]

The coupon service runs in this process on a real socket (on embedded or external broker
and store). `--subscribers` SSE streams are opened on `/alerts/stream`; then, `--rounds`
times, a campaign is approved that commits its budget past the alert line, and every
stream must see that budget's `alert_raised`; then a top-up must bring `alert_resolved`.
Latency is from the moment the approval (or top-up) answered to the moment each stream
read the event: the evaluator's transaction, the outbox relay's publish, the replica's
broker reader and the fan-out are all inside it. Reports p50/p99/max per kind and asserts
every delivery arrived (within `--timeout` seconds)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench.raw_capacity import infrastructure_arguments, run_benchmark
from services.coupon.main import create_app
from services.coupon.settings import CouponSettings
from tests.support.servers import serve

RESULTS_PATH = Path(__file__).parent / "results" / "coupon_alert_stream.json"
TENANT = "bench-alerts"
HEADERS = {"X-Tenant-Id": TENANT, "X-Actor-Id": "bench", "X-Actor-Roles": "budget_approver"}
#: Streams per HTTP client: one pool with hundreds of open streams spends its time scanning.
PER_CLIENT = 25


class Subscriber:
    """One open stream: when each (event, subject) arrived."""

    def __init__(self) -> None:
        self.arrived: dict[tuple[str, str], float] = {}
        self.connected = asyncio.Event()

    async def read(self, client: httpx.AsyncClient) -> None:
        headers = {"Accept": "text/event-stream"}
        timeout = httpx.Timeout(10.0, read=None)
        async with client.stream("GET", "/alerts/stream", headers=headers, timeout=timeout) as r:
            event = ""
            async for line in r.aiter_lines():
                if line.startswith(":"):
                    self.connected.set()
                elif line.startswith("event: "):
                    event = line[len("event: ") :]
                elif line.startswith("data: "):
                    data = json.loads(line[len("data: ") :])
                    self.arrived.setdefault((event, data["subject_id"]), time.perf_counter())


def _ms(values: list[float], quantile: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(quantile * len(ordered)))] * 1000, 1)


async def _ok(response: Any, status: int = 200) -> dict[str, Any]:
    answer = await response
    assert answer.status_code == status, answer.text
    return answer.json()


async def _budget_past_its_line(api: httpx.AsyncClient) -> tuple[str, str]:
    """A budget of 100.00 and a submitted campaign that will commit 96% of it."""
    now = dt.datetime.now(dt.UTC)
    budget = await _ok(
        api.post("/budgets", json={
            "name": "bench", "owner_kind": "department", "owner": "ops", "amount": 100_000,
            "starts_at": (now - dt.timedelta(days=1)).isoformat(),
            "ends_at": (now + dt.timedelta(days=30)).isoformat(),
            "alert_thresholds": [95],
        }),
        201,
    )  # fmt: skip
    batch = {
        "key": "main", "name": "bench", "stock": 96,
        "discount": {"kind": "threshold", "amount": 1_000, "threshold": 10_000},
        "claim_from": now.isoformat(), "claim_until": (now + dt.timedelta(days=7)).isoformat(),
        "validity": {"days_after_claim": 7},
    }  # fmt: skip
    campaign = await _ok(
        api.post("/campaigns", json={"name": "b", "budget_id": budget["id"], "batches": [batch]}),
        201,
    )
    await _ok(api.post(f"/campaigns/{campaign['id']}/submit"))
    return budget["id"], campaign["id"]


async def _deliveries(
    subscribers: list[Subscriber], key: tuple[str, str], since: float, within: float
) -> list[float]:
    deadline = time.perf_counter() + within
    while any(key not in s.arrived for s in subscribers):
        if time.perf_counter() > deadline:
            missing = sum(key not in s.arrived for s in subscribers)
            raise AssertionError(f"{missing} streams never got {key} within {within}s")
        await asyncio.sleep(0.005)
    return [s.arrived[key] - since for s in subscribers]


async def run(bootstrap: str, mongodb_uri: str, args: argparse.Namespace) -> dict[str, Any]:
    settings = CouponSettings(
        kafka_bootstrap_servers=bootstrap,
        mongodb_uri=mongodb_uri,
        mongodb_database=f"bench_alerts_{uuid.uuid4().hex[:8]}",
        log_level=os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
    )
    raised: list[float] = []
    resolved: list[float] = []
    async with serve(create_app(settings)) as url:
        clients = [
            httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=30)
            for _ in range(max(1, -(-args.subscribers // PER_CLIENT)))
        ]
        subscribers = [Subscriber() for _ in range(args.subscribers)]
        readers = [
            asyncio.create_task(s.read(clients[i // PER_CLIENT])) for i, s in enumerate(subscribers)
        ]
        try:
            await asyncio.wait_for(asyncio.gather(*(s.connected.wait() for s in subscribers)), 60)
            api = clients[0]
            for _ in range(args.rounds):
                budget_id, campaign_id = await _budget_past_its_line(api)
                await _ok(api.post(f"/campaigns/{campaign_id}/approve"))
                since = time.perf_counter()
                key = ("alert_raised", budget_id)
                raised += await _deliveries(subscribers, key, since, args.timeout)
                await _ok(api.post(f"/budgets/{budget_id}/top-ups", json={"amount": 100_000}))
                since = time.perf_counter()
                key = ("alert_resolved", budget_id)
                resolved += await _deliveries(subscribers, key, since, args.timeout)
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            for client in clients:
                await client.aclose()
    rows = [
        {"event": name, "deliveries": len(values), "p50_ms": _ms(values, 0.5),
         "p99_ms": _ms(values, 0.99), "max_ms": round(max(values) * 1000, 1)}
        for name, values in (("alert_raised", raised), ("alert_resolved", resolved))
    ]  # fmt: skip
    return {
        "benchmark": "coupon_alert_stream",
        "run_at": dt.datetime.now(dt.UTC).isoformat(),
        "infrastructure": "external" if args.external else "embedded (tansu + SecantusDB)",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "parameters": {"subscribers": args.subscribers, "rounds": args.rounds},
        "rows": rows,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=10.0)
    infrastructure_arguments(parser, RESULTS_PATH)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    document = run_benchmark(args, "bench-alerts-", lambda kafka, mongo: run(kafka, mongo, args))
    print(f"{args.subscribers} streams, {args.rounds} rounds")
    for row in document["rows"]:
        print(
            f"{row['event']:<15} deliveries {row['deliveries']:>6}  p50 {row['p50_ms']:>7} ms"
            f"  p99 {row['p99_ms']:>7} ms  max {row['max_ms']:>7} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
