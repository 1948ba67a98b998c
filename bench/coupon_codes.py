"""Redeem codes: a lot of 100,000 codes made in one request, then customers redeeming codes
and guessers refused, over HTTP to the coupon service, as ratios against the store's raw
rates measured in the same run.

    python -m bench.coupon_codes [--codes N] [--redemptions R] [--in-flight K] [--external]

What is timed:
- making the lot: one POST `/batches/{id}/code-lots?format=csv` with `--codes`, from the
  request to the last byte of the streamed CSV (codes drawn and digested off the event
  loop, digests written in chunks of 5,000 with `insert_many`), against the raw batched
  insert rate;
- `--redemptions` distinct customers each redeeming one code of the lot, `--in-flight` at a
  time: redemptions/s and p50/p99, against the raw single-write rate (a redemption is a
  conditional update of the code and a claim through the desk's batched issuing);
- as many refusals: unknown codes and codes another customer used, p50/p99 of each (they
  must cost the same: the answer reveals nothing);
- the same redemptions through the service's own parts in this process (no HTTP): what the
  redemption path's store work sustains. On a shared 2-core machine the HTTP rows measure
  Python's HTTP stack (client and service on the cores the store uses) more than the path.
It asserts the store holds `--codes` digests and exactly 2 x `--redemptions` coupons."""

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

from bench.coupon_claims import _drop, _ms, running_batch, uvicorn
from bench.raw_capacity import (
    format_table,
    infrastructure_arguments,
    rates,
    run_benchmark,
    run_raw_capacity,
)
from devstack import free_ports
from services.coupon.domain.codes import new_code
from services.coupon.main import create_app
from services.coupon.service import parts
from services.coupon.service.codes import CodeDesk
from services.coupon.settings import CouponSettings
from tests.support.servers import serve

DEFAULT_CODES = 100_000
DEFAULT_REDEMPTIONS = 2_000
DEFAULT_IN_FLIGHT = 100
TENANT = "bench-codes"
RESULTS_PATH = Path(__file__).parent / "results" / "coupon_codes.json"


async def _timed_posts(
    api: httpx.AsyncClient, bodies: list[dict[str, Any]], in_flight: int
) -> tuple[float, list[float], list[int]]:
    gate = asyncio.Semaphore(in_flight)
    latencies: list[float] = []
    statuses: list[int] = []

    async def one(body: dict[str, Any]) -> None:
        async with gate:
            started = time.perf_counter()
            response = await api.post("/codes/redemptions", json=body)
            latencies.append(time.perf_counter() - started)
            statuses.append(response.status_code)

    started = time.perf_counter()
    await asyncio.gather(*(one(b) for b in bodies))
    return time.perf_counter() - started, latencies, statuses


async def run_codes(bootstrap: str, mongodb_uri: str, args: argparse.Namespace) -> dict[str, Any]:
    raw = await run_raw_capacity(bootstrap, mongodb_uri, messages=2_000, docs=1_000)
    raw_rates = rates(raw)
    print(format_table(raw), flush=True)
    run_id = uuid.uuid4().hex[:8]
    database = f"bench_codes_{run_id}"
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "MONGODB_URI": mongodb_uri,
        "KAFKA_GROUP_PREFIX": f"bench-{run_id}.",
        "COUPON_MONGODB_DATABASE": database,
        "COUPON_CODE_LOT_MAX": str(max(args.codes, 100_000)),
        "COUPON_CUSTOMER_CLAIMS_PER_MINUTE": "1000000",
        "COUPON_CHANNEL_CLAIMS_PER_SECOND": "1000000",
        "LOG_LEVEL": "WARNING",
    }
    (port,) = free_ports(1)
    headers = {"X-Tenant-Id": TENANT, "X-Actor-Roles": "budget_approver", "X-Actor-Id": "ops"}
    limits = httpx.Limits(max_connections=args.in_flight, max_keepalive_connections=args.in_flight)
    with uvicorn("services.coupon.main:create_app", port, env) as coupon:
        async with httpx.AsyncClient(
            base_url=coupon.url, headers=headers, timeout=600, limits=limits
        ) as api:
            batch_id = await running_batch(api, 2 * args.redemptions)
            started = time.perf_counter()
            made = await api.post(
                f"/batches/{batch_id}/code-lots?format=csv", json={"count": args.codes}
            )
            lot_seconds = time.perf_counter() - started
            assert made.status_code == 201, made.text
            codes = made.text.splitlines()[1:]
            assert len(codes) == args.codes
            print(f"lot of {len(codes):,} codes in {lot_seconds:.2f} s", flush=True)

            redeem = [
                {"customer_id": f"cus_{i:06d}", "code": codes[i]} for i in range(args.redemptions)
            ]
            seconds, latencies, statuses = await _timed_posts(api, redeem, args.in_flight)
            assert statuses.count(201) == args.redemptions, sorted(set(statuses))
            unknown = [{"customer_id": f"g_{i}", "code": new_code()} for i in range(500)]
            _, unknown_lat, unknown_st = await _timed_posts(api, unknown, args.in_flight)
            used = [{"customer_id": f"h_{i}", "code": codes[i]} for i in range(500)]
            _, used_lat, used_st = await _timed_posts(api, used, args.in_flight)
            assert set(unknown_st) == set(used_st) == {409}
    core_seconds, core_latencies = await core_redemptions(
        bootstrap, mongodb_uri, database, codes[-args.redemptions :], args.in_flight
    )
    stored = await _count(mongodb_uri, database)
    assert stored == (args.codes, 2 * args.redemptions), stored
    await _drop(mongodb_uri, database)
    row = {
        "codes": args.codes,
        "lot_seconds": round(lot_seconds, 2),
        "codes_per_s": round(args.codes / lot_seconds),
        "codes_vs_raw_insert_many": round(
            args.codes / lot_seconds / raw_rates["store_insert_many"], 2
        ),
        "redemptions": args.redemptions,
        "redemptions_per_s": round(args.redemptions / seconds, 1),
        "redemptions_vs_raw_insert_one": round(
            args.redemptions / seconds / raw_rates["store_insert_one"], 2
        ),
        "core_redemptions_per_s": round(args.redemptions / core_seconds, 1),
        "core_vs_raw_insert_one": round(
            args.redemptions / core_seconds / raw_rates["store_insert_one"], 2
        ),
        "core_p50_ms": _ms(core_latencies, 0.5),
        "core_p99_ms": _ms(core_latencies, 0.99),
        "redeem_p50_ms": _ms(latencies, 0.5),
        "redeem_p99_ms": _ms(latencies, 0.99),
        "unknown_p50_ms": _ms(unknown_lat, 0.5),
        "unknown_p99_ms": _ms(unknown_lat, 0.99),
        "used_p50_ms": _ms(used_lat, 0.5),
        "used_p99_ms": _ms(used_lat, 0.99),
    }
    print(row, flush=True)
    return {
        "benchmark": "coupon_codes",
        "run_at": dt.datetime.now(dt.UTC).isoformat(),
        "infrastructure": "external" if args.external else "embedded (tansu + SecantusDB)",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "parameters": {
            "codes": args.codes,
            "redemptions": args.redemptions,
            "in_flight": args.in_flight,
        },
        "raw_rates_per_s": raw_rates,
        "codes": row,
    }


async def core_redemptions(
    bootstrap: str, mongodb_uri: str, database: str, codes: list[str], in_flight: int
) -> tuple[float, list[float]]:
    """Redemptions through the code desk in this process (after the HTTP rounds)."""
    settings = CouponSettings(
        kafka_bootstrap_servers=bootstrap,
        mongodb_uri=mongodb_uri,
        mongodb_database=database,
        kafka_group_prefix=f"bench-core-{uuid.uuid4().hex[:8]}.",
        log_level="WARNING",
        customer_claims_per_minute=1_000_000,
        channel_claims_per_second=1_000_000,
    )
    app = create_app(settings)
    latencies: list[float] = []
    async with serve(app):
        runtime = app.state.runtime
        desk = runtime.state.get(parts.DESK) or parts.install(runtime)
        codes_desk = CodeDesk(runtime, settings, desk, runtime.state[parts.LIMITER])
        queue = list(enumerate(codes))

        async def caller() -> None:
            while queue:
                i, code = queue.pop()
                sent = time.perf_counter()
                await codes_desk.redeem(TENANT, f"core_{i:06d}", code)
                latencies.append(time.perf_counter() - sent)

        start = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(in_flight)))
        return time.perf_counter() - start, latencies


async def _count(mongodb_uri: str, database: str) -> tuple[int, int]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri)
    try:
        db = client[database]
        codes = await db["redeem_codes"].count_documents({"tenant": TENANT})
        coupons = await db["coupons"].count_documents({"tenant": TENANT})
        return codes, coupons
    finally:
        await client.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.coupon_codes", description=__doc__)
    parser.add_argument("--codes", type=int, default=DEFAULT_CODES)
    parser.add_argument("--redemptions", type=int, default=DEFAULT_REDEMPTIONS)
    parser.add_argument("--in-flight", type=int, default=DEFAULT_IN_FLIGHT)
    infrastructure_arguments(parser, RESULTS_PATH)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run_benchmark(args, "bench-codes-", lambda kafka, mongo: run_codes(kafka, mongo, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
