"""Loyalty point earning from order events: `customer.order_paid.v1` envelopes on the real
broker, consumed by the loyalty service's own consumer, as ratios against the raw capacity
of the same broker and store measured in the same run.

    python -m bench.loyalty_earning [--orders N] [--customers K] [--external]

What is timed: the `loyalty.orders` consumer group handling N paid orders already on the
topic, from the first event handled to the last (the group join before it is not counted).
Each event is one transaction: the event-id receipt, the order's earning record, the point
account read and guarded write (maturing first), its ledger entries, the member's tier
(growth value), and one outbox entry with the `loyalty.points_earned.v1` event. A tenant
earning rule (category multiplier, day cap) and tier scheme are set, so every rule runs.
Orders of one customer are keyed alike, so they arrive in order on one partition.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from bench.processes import CpuMeter, infrastructure
from bench.raw_capacity import (
    Measurement,
    format_table,
    on_infrastructure,
    rates,
    run_raw_capacity,
    write_results,
)
from contracts import Envelope, Topic
from contracts.customer import OrderLine, OrderPaid
from servicekit.runtime import Runtime
from services.loyalty import store
from services.loyalty.domain.earning import EarningRule
from services.loyalty.domain.tiers import TierScheme
from services.loyalty.events import SUBSCRIPTIONS
from services.loyalty.settings import LoyaltySettings
from services.loyalty.store.schemes import SchemeStore

DEFAULT_ORDERS = 1_000
DEFAULT_CUSTOMERS = 200
RAW_MESSAGES = 10_000
RAW_DOCS = 1_000
RESULTS_PATH = Path(__file__).parent / "results" / "loyalty_earning.json"
#: How long the consumer may take before the run is called failed.
TIMEOUT_SECONDS = 600


@dataclass(frozen=True)
class Ratio:
    measurement: Measurement
    against: str
    raw_rate: float

    @property
    def ratio(self) -> float:
        return self.measurement.rate / self.raw_rate if self.raw_rate else float("nan")


def paid_orders(count: int, customers: int) -> list[OrderPaid]:
    now = dt.datetime.now(dt.UTC)
    ids = [f"cus_{uuid.uuid4().hex}" for _ in range(customers)]
    return [
        OrderPaid(
            customer_id=ids[i % customers],
            order_id=f"SO-{i:07d}",
            amount=3_000 + i % 7,
            currency="CNY",
            lines=[
                OrderLine(line_id="L1", sku="TEA-1", category="tea", quantity=1, amount=2_000),
                OrderLine(line_id="L2", sku="CUP-1", quantity=1, amount=1_000 + i % 7),
            ],
            first_order=i < customers,
            paid_at=now - dt.timedelta(seconds=count - i),
        )
        for i in range(count)
    ]


async def publish(bootstrap: str, tenant: str, orders: list[OrderPaid]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        sends = []
        for order in orders:
            envelope = Envelope(
                type=order.type,
                source="/bench",
                subject=order.customer_id,
                tenant=tenant,
                data=order.model_dump(mode="json"),
            )
            key = order.customer_id.encode()
            sends.append(await producer.send(str(Topic.CUSTOMER), envelope.to_bytes(), key=key))
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


async def configure(runtime: Runtime, tenant: str) -> None:
    schemes = SchemeStore(runtime.db)
    rule = EarningRule(category_multipliers={"tea": 200}, cap_per_day=5_000, first_order_bonus=10)
    tiers = TierScheme.model_validate(
        {
            "tiers": [
                {"tier_id": "silver", "name": "Silver", "threshold": 0},
                {"tier_id": "gold", "name": "Gold", "threshold": 200, "points_multiplier": 150},
            ]
        }
    )
    await schemes.put(tenant, rule, changed_by="bench")
    await schemes.put(tenant, tiers, changed_by="bench")


async def measure_earning(runtime: Runtime, orders: int) -> tuple[Measurement, dict[str, float]]:
    """From the first order handled to the last: (orders - 1) over that time, and the CPU
    per order of the consumer (this process) and of the store and broker when local."""
    [consumer] = runtime.consumers
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while consumer.handled < 1:
        await _tick(deadline)
    settings = runtime.settings
    meter = CpuMeter(infrastructure(settings.kafka_bootstrap_servers, settings.mongodb_uri))
    started = time.perf_counter()
    while consumer.handled + consumer.skipped + consumer.dead_lettered < orders:
        await _tick(deadline)
    seconds = time.perf_counter() - started
    cpu = meter.per_unit_ms(orders - 1)
    if consumer.dead_lettered:
        raise RuntimeError(f"{consumer.dead_lettered} orders were dead-lettered")
    measurement = Measurement("points_earned", "paid orders earning points", orders - 1, seconds)
    return measurement, {"service": cpu.pop("client")} | cpu


async def _tick(deadline: float) -> None:
    if time.monotonic() > deadline:
        raise TimeoutError("the consumer did not finish in time")
    await asyncio.sleep(0.02)


async def run_earning(
    bootstrap: str, mongodb_uri: str, args: argparse.Namespace
) -> tuple[list[Measurement], list[Ratio], dict[str, float]]:
    raw = await run_raw_capacity(bootstrap, mongodb_uri, messages=RAW_MESSAGES, docs=RAW_DOCS)
    tenant = f"bench-{uuid.uuid4().hex[:8]}"
    settings = LoyaltySettings(
        kafka_bootstrap_servers=bootstrap,
        mongodb_uri=mongodb_uri,
        mongodb_database=f"bench_loyalty_{uuid.uuid4().hex[:8]}",
        kafka_group_prefix=f"{tenant}.",
    )
    runtime = await Runtime.start(settings, indexes=store.INDEXES, subscriptions=[])
    try:
        await configure(runtime, tenant)
        await publish(bootstrap, tenant, paid_orders(args.orders, args.customers))
        for subscription in SUBSCRIPTIONS:
            await runtime.subscribe(subscription)
        earning, cpu = await measure_earning(runtime, args.orders)
    finally:
        await runtime.client.drop_database(settings.mongodb_database)
        await runtime.stop()
    return raw, judge([earning], rates(raw)), cpu


def judge(service: Sequence[Measurement], raw: dict[str, float]) -> list[Ratio]:
    """Each order is a transaction of several writes: judged against single inserts and
    conditional updates (what it is made of) and against consuming from the broker."""
    against = ["store_insert_one", "store_update_one", "broker_consume"]
    return [Ratio(m, key, raw[key]) for m in service for key in against if key in raw]


def format_ratios(ratios: Sequence[Ratio]) -> str:
    rows = [("use case", "count", "seconds", "rate/s", "ratio", "of raw")]
    rows += [
        (
            r.measurement.metric,
            f"{r.measurement.count:,}",
            f"{r.measurement.seconds:.2f}",
            f"{r.measurement.rate:,.0f}",
            f"{r.ratio:.1%}",
            r.against,
        )
        for r in ratios
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows
    )


def results_document(
    raw: Sequence[Measurement],
    ratios: Sequence[Ratio],
    cpu: dict[str, float],
    *,
    external: bool,
    args: argparse.Namespace,
) -> dict[str, Any]:
    return {
        "benchmark": "loyalty_earning",
        "run_at": dt.datetime.now(dt.UTC).isoformat(),
        "infrastructure": "external" if external else "embedded (tansu + SecantusDB)",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "parameters": {"orders": args.orders, "customers": args.customers},
        "raw_rates_per_s": rates(raw),
        "service": [
            {
                **asdict(r.measurement),
                "rate_per_s": r.measurement.rate,
                "against": r.against,
                "ratio": r.ratio,
            }
            for r in ratios
        ],
        "cpu_ms_per_order": cpu,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.loyalty_earning", description=__doc__)
    parser.add_argument("--orders", type=int, default=DEFAULT_ORDERS)
    parser.add_argument("--customers", type=int, default=DEFAULT_CUSTOMERS)
    parser.add_argument(
        "--external",
        action="store_true",
        help="use KAFKA_BOOTSTRAP_SERVERS and MONGODB_URI instead of starting embedded servers",
    )
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    return parser


def _run(bootstrap: str, mongodb_uri: str, args: argparse.Namespace) -> tuple[list, list, dict]:
    return asyncio.run(run_earning(bootstrap, mongodb_uri, args))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    raw, ratios, cpu = on_infrastructure(
        args.external, "bench-loyalty-", lambda kafka, mongo: _run(kafka, mongo, args)
    )
    print(format_table(raw))
    print()
    print(format_ratios(ratios))
    print(f"\nCPU ms per order: {cpu}")
    document = results_document(raw, ratios, cpu, external=args.external, args=args)
    write_results(document, args.output)
    print(f"\nresults written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
