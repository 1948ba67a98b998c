"""Customer-service ingestion: behaviour events in batches and orders paid, through the
service's own use cases, as ratios against the raw capacity of the same broker and store
measured in the same run.

    python -m bench.customer_ingest [--events N] [--orders M] [--customers K] [--external]

What is timed (the use cases are called directly, not over HTTP):
- behaviour: `BehaviourService.record_batch` on batches of 500 events, each item validated
  as the batch route does; one transaction per batch (insert_many of the events, insert_many
  of their outbox entries), with duplicate detection and the customer check;
- orders: `OrderService.report_paid`, one transaction per order (idempotency read, order
  insert, statistics read and guarded write, outbox entries, the first-order promotion),
  `--concurrency` in flight, never two for one customer at once;
- relay drain: the outbox relay is held back during ingestion, then started, and timed
  until every entry is published to the broker (acks=all) and marked sent.
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

from pydantic import TypeAdapter

from bench.raw_capacity import (
    INSERT_BATCH,
    Measurement,
    format_table,
    on_infrastructure,
    rates,
    run_raw_capacity,
    write_results,
)
from servicekit.runtime import Runtime
from services.customer import store
from services.customer.domain.behaviour import BatchedBehaviourReport
from services.customer.domain.customer import SourceChannel
from services.customer.domain.orders import PaidReport
from services.customer.service.behaviour import BehaviourService, Indexed
from services.customer.service.orders import OrderService
from services.customer.service.profiles import CustomerService
from services.customer.settings import CustomerSettings
from services.customer.store.behaviour import BehaviourStore
from services.customer.store.crypto import PersonalDataVault
from services.customer.store.custom_fields import CustomFieldStore
from services.customer.store.customers import CustomerStore
from services.customer.store.orders import OrderStore, PurchaseStatsStore

DEFAULT_EVENTS = 10_000
DEFAULT_ORDERS = 200
DEFAULT_CUSTOMERS = 100
DEFAULT_CONCURRENCY = 4
#: The raw-capacity sample: enough to time, small enough to leave the run its budget.
RAW_MESSAGES = 10_000
RAW_DOCS = 1_000
TENANT = "bench-ingest"
KINDS = ("page_view", "product_view", "search", "add_to_cart", "store_visit")
RESULTS_PATH = Path(__file__).parent / "results" / "customer_ingest.json"
_ITEM = TypeAdapter(BatchedBehaviourReport)


@dataclass(frozen=True)
class Ratio:
    """A service rate over the raw rate it is judged against."""

    measurement: Measurement
    against: str
    raw_rate: float

    @property
    def ratio(self) -> float:
        return self.measurement.rate / self.raw_rate if self.raw_rate else float("nan")


# ---------------------------------------------------------------------------- inputs


def behaviour_items(count: int, customers: list[str]) -> list[dict[str, Any]]:
    """Tracker-shaped events as JSON would bring them: strings, with their own ids."""
    now = dt.datetime.now(dt.UTC)
    return [
        {
            "customer_id": customers[i % len(customers)],
            "behaviour_id": f"bench-{i}",
            "kind": KINDS[i % len(KINDS)],
            "occurred_at": (now - dt.timedelta(seconds=i)).isoformat(),
            "target": {"product_id": f"SKU-{i % 977}", "category": "tea", "page": "/p/detail"},
        }
        for i in range(count)
    ]


def paid_reports(count: int, customers: list[str]) -> list[PaidReport]:
    now = dt.datetime.now(dt.UTC)
    reports = []
    for i in range(count):
        lines = [
            {"line_id": f"L{n}", "sku": f"SKU-{(i + n) % 97}", "quantity": 1, "amount": 1_000 + n}
            for n in range(1 + i % 3)
        ]
        reports.append(
            PaidReport.model_validate(
                {
                    "order_id": f"SO-{i:07d}",
                    "customer_id": customers[i % len(customers)],
                    "amount": sum(line["amount"] for line in lines),
                    "lines": lines,
                    "paid_at": now - dt.timedelta(minutes=count - i),
                }
            )
        )
    return reports


# ---------------------------------------------------------------------- measurements


async def register_customers(runtime: Runtime, count: int) -> list[str]:
    profiles = CustomerService(
        runtime.uow, CustomerStore(runtime.db, runtime.state["vault"]), CustomFieldStore(runtime.db)
    )
    customers = []
    for i in range(count):
        customer = await profiles.register(
            TENANT, display_name=f"Shopper {i}", source_channel=SourceChannel.MINI_PROGRAM
        )
        customers.append(customer.id)
    return customers


async def measure_behaviour(runtime: Runtime, customers: list[str], events: int) -> Measurement:
    service = BehaviourService(runtime.uow, BehaviourStore(runtime.db), CustomerStore(runtime.db))
    raw = behaviour_items(events, customers)  # built outside the timing, as JSON arrives
    recorded = 0
    started = time.perf_counter()
    for start in range(0, events, INSERT_BATCH):
        batch: list[Indexed] = [
            (i, _ITEM.validate_python(item))
            for i, item in enumerate(raw[start : start + INSERT_BATCH])
        ]
        recorded += (await service.record_batch(TENANT, batch)).recorded
    seconds = time.perf_counter() - started
    if recorded != events:
        raise RuntimeError(f"recorded {recorded} of {events} behaviour events")
    return Measurement(
        "behaviour_ingest", f"behaviour ingest ({INSERT_BATCH}/batch)", events, seconds
    )


async def measure_orders(
    runtime: Runtime, customers: list[str], orders: int, concurrency: int
) -> Measurement:
    service = OrderService(
        runtime.uow,
        OrderStore(runtime.db),
        PurchaseStatsStore(runtime.db),
        CustomerStore(runtime.db),
    )
    reports = paid_reports(orders, customers)
    # Consecutive reports belong to different customers (round-robin), so `concurrency`
    # workers taking them in order rarely contend for one customer's statistics.
    queue: asyncio.Queue[PaidReport] = asyncio.Queue()
    for report in reports:
        queue.put_nowait(report)

    async def worker() -> None:
        while not queue.empty():
            _, created = await service.report_paid(TENANT, queue.get_nowait())
            if not created:
                raise RuntimeError("an order was answered as a repeat")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    return Measurement("orders_paid", f"orders paid (x{concurrency} in flight)", orders, seconds)


async def measure_relay_drain(runtime: Runtime) -> Measurement:
    """Relay rounds back to back, as `OutboxRelay.run` does them while there is work."""
    relay = runtime.relay
    if not await relay.hold_lease():
        raise RuntimeError("another relay holds the outbox lease")
    before = relay.published  # events, not outbox entries (one entry per transaction)
    started = time.perf_counter()
    while await relay.publish_pending():
        pass
    seconds = time.perf_counter() - started
    published = relay.published - before
    if await relay.pending_count():
        raise RuntimeError("the relay stopped with entries still pending")
    return Measurement("relay_drain", "outbox relay drain (events)", published, seconds)


async def run_ingest(
    bootstrap: str, mongodb_uri: str, args: argparse.Namespace
) -> tuple[list[Measurement], list[Ratio]]:
    raw = await run_raw_capacity(bootstrap, mongodb_uri, messages=RAW_MESSAGES, docs=RAW_DOCS)
    settings = CustomerSettings(
        kafka_bootstrap_servers=bootstrap,
        mongodb_uri=mongodb_uri,
        mongodb_database=f"bench_customer_{uuid.uuid4().hex[:8]}",
        kafka_group_prefix=f"bench-{uuid.uuid4().hex[:8]}.",
    )
    runtime = await Runtime.start(
        settings,
        indexes=store.indexes(settings),
        subscriptions=[],
        run_relay=False,  # held back: the drain is timed on its own
        state={"vault": PersonalDataVault.from_settings(settings)},
    )
    try:
        customers = await register_customers(runtime, args.customers)
        service = [
            await measure_behaviour(runtime, customers, args.events),
            await measure_orders(runtime, customers, args.orders, args.concurrency),
            await measure_relay_drain(runtime),
        ]
    finally:
        await runtime.client.drop_database(settings.mongodb_database)
        await runtime.stop()
    return raw, judge(service, rates(raw))


def judge(service: Sequence[Measurement], raw: dict[str, float]) -> list[Ratio]:
    """Every write against batched inserts (the most the store takes); an order, one
    transaction per request, also against single inserts; the relay against produce."""
    against = {
        "behaviour_ingest": ["store_insert_many"],
        "orders_paid": ["store_insert_many", "store_insert_one"],
        "relay_drain": ["broker_produce"],
    }
    return [Ratio(m, key, raw[key]) for m in service for key in against[m.key]]


# ------------------------------------------------------------------------ reporting


def format_ratios(ratios: Sequence[Ratio]) -> str:
    header = ("use case", "count", "seconds", "rate/s", "ratio", "of raw")
    rows = [
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
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first, *numbers, last = cells
        right = [cell.rjust(width) for cell, width in zip(numbers, widths[1:-1], strict=True)]
        return "  ".join([first.ljust(widths[0]), *right, last])

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def results_document(
    raw: Sequence[Measurement], ratios: Sequence[Ratio], *, external: bool, args: argparse.Namespace
) -> dict[str, Any]:
    raw_rates = rates(raw)
    return {
        "benchmark": "customer_ingest",
        "run_at": dt.datetime.now(dt.UTC).isoformat(),
        "infrastructure": "external" if external else "embedded (tansu + SecantusDB)",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "parameters": {
            "events": args.events,
            "orders": args.orders,
            "customers": args.customers,
            "concurrency": args.concurrency,
            "batch": INSERT_BATCH,
        },
        "raw_rates_per_s": raw_rates,
        "service": [
            {
                **asdict(r.measurement),
                "rate_per_s": r.measurement.rate,
                "against": r.against,
                "ratio": r.ratio,
            }
            for r in ratios
        ],
    }


# ------------------------------------------------------------------------------ CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.customer_ingest", description=__doc__)
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--orders", type=int, default=DEFAULT_ORDERS)
    parser.add_argument("--customers", type=int, default=DEFAULT_CUSTOMERS)
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument(
        "--external",
        action="store_true",
        help="use KAFKA_BOOTSTRAP_SERVERS and MONGODB_URI instead of starting embedded servers",
    )
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    return parser


def _run(bootstrap: str, mongodb_uri: str, args: argparse.Namespace) -> tuple[list, list]:
    return asyncio.run(run_ingest(bootstrap, mongodb_uri, args))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    raw, ratios = on_infrastructure(
        args.external, "bench-ingest-", lambda kafka, mongo: _run(kafka, mongo, args)
    )
    print(format_table(raw))
    print()
    print(format_ratios(ratios))
    write_results(results_document(raw, ratios, external=args.external, args=args), args.output)
    print(f"\nresults written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
