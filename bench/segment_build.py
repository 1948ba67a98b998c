"""Segment builds and real-time membership on the tagging audience engine, against the raw
scan rate of the store measured in the same run.

    python -m bench.segment_build [--customers N] [--events M] [--scan-docs K] [--external]

What is timed (all in-process: the engine is in memory, the store only gives the yardstick):
- load: `TenantAudience.upsert_many` of N synthetic customers' facts (generation not timed);
- build: `TenantAudience.evaluate` of a small, a medium and a large segment rule, warm (the
  first evaluation is discarded), median of several runs;
- real time: per event, `upsert` of one changed customer, their memberships of 10 segments
  with the compiled predicates (`domain.segments.memberships`), and the joined/left diff.
The yardstick: `store scan (find all)` over documents batch-inserted as `raw_capacity` does,
so "a scan-based build of N customers would take N / scan rate seconds".
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pymongo import AsyncMongoClient
from pymongo.write_concern import WriteConcern

from bench.raw_capacity import Measurement, measure_insert_many, measure_scan, write_results
from devstack import EmbeddedInfra, InfraConfig, free_ports
from services.tagging.audience import AudienceEngine, TenantAudience
from services.tagging.domain.rules.ast import (
    BehaviourCondition,
    Node,
    all_of,
    any_of,
    attr,
    leaves,
    negate,
    segment,
    tag,
)
from services.tagging.domain.rules.compile import compile_rule
from services.tagging.domain.rules.facts import CustomerFacts, PurchaseFacts, TagAssignment
from services.tagging.domain.segments import (
    CompiledSegment,
    dependency_order,
    membership_change,
    memberships,
)

DEFAULT_CUSTOMERS = 1_000_000
DEFAULT_EVENTS = 2_000
DEFAULT_SCAN_DOCS = 20_000
BUILD_RUNS = 5
CHUNK = 50_000
RESULTS_PATH = Path(__file__).parent / "results" / "segment_build.json"
NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)
TODAY = NOW.date()
DAY = dt.timedelta(days=1)

# ------------------------------------------------------------------------- population

GENDERS = (("female", 0.55), ("male", 0.39), ("other", 0.01), ("unknown", 0.05))
STAGES = (
    ("lead", 0.2),
    ("prospect", 0.15),
    ("customer", 0.45),
    ("at_risk", 0.12),
    ("churned", 0.08),
)
CHANNELS = (
    ("mini_program", 0.4),
    ("store", 0.3),
    ("app", 0.15),
    ("web", 0.08),
    ("partner", 0.04),
    ("import", 0.03),
)
SKIN_TYPES = (("dry", 0.3), ("oily", 0.25), ("normal", 0.3), ("combination", 0.15))
INTERESTS = ("tea", "golf", "wine", "yoga", "baby", "travel")
LEVELS = ("gold", "silver", "bronze")
CATEGORIES = ("baby", "toys", "tea", "beauty", "sports", "home", "food", "books")
KINDS = ("product_view", "search", "add_to_cart", "page_view")
#: Share of customers with any behaviour in the last 60 days.
ACTIVE_SHARE = 0.2


def _pick(rng: np.random.Generator, options: tuple[tuple[str, float], ...], n: int) -> list[str]:
    names = [name for name, _ in options]
    return [names[i] for i in rng.choice(len(names), size=n, p=[p for _, p in options])]


def customers(count: int, *, seed: int = 7) -> Iterator[list[CustomerFacts]]:
    """Synthetic customers' facts in chunks, with shop-like distributions. Built without
    validation (`model_construct`): the values are made well-typed here."""
    rng = np.random.default_rng(seed)
    for start in range(0, count, CHUNK):
        yield _chunk(rng, start, min(CHUNK, count - start))


def _chunk(rng: np.random.Generator, start: int, n: int) -> list[CustomerFacts]:
    genders, stages = _pick(rng, GENDERS, n), _pick(rng, STAGES, n)
    channels, skins = _pick(rng, CHANNELS, n), _pick(rng, SKIN_TYPES, n)
    registered = rng.integers(0, 3 * 365 * 24, size=n)  # hours ago
    months = rng.integers(1, 13, size=n)
    u = rng.random((n, 8))
    orders = np.where(u[:, 0] < 0.35, 0, rng.geometric(0.3, size=n))
    spent = (orders * rng.lognormal(np.log(20_000), 0.8, size=n)).astype(np.int64)
    last_days = rng.integers(0, 730, size=n)
    return [
        _customer(
            rng,
            start + i,
            gender=genders[i] if u[i, 1] < 0.95 else None,
            stage=stages[i],
            channel=channels[i],
            skin=skins[i] if u[i, 2] < 0.5 else None,
            registered_at=NOW - dt.timedelta(hours=int(registered[i])),
            month=int(months[i]) if u[i, 3] < 0.7 else None,
            orders=int(orders[i]),
            spent=int(spent[i]),
            refunded=int(spent[i] // 5) if u[i, 4] < 0.1 else 0,
            last_days=int(last_days[i]),
            draws=u[i],
        )
        for i in range(n)
    ]


def _customer(
    rng: np.random.Generator,
    index: int,
    *,
    gender: str | None,
    stage: str,
    channel: str,
    skin: str | None,
    registered_at: dt.datetime,
    month: int | None,
    orders: int,
    spent: int,
    refunded: int,
    last_days: int,
    draws: np.ndarray,
) -> CustomerFacts:
    last = NOW - last_days * DAY - dt.timedelta(hours=3) if orders else None
    attributes = {
        "gender": gender,
        "lifecycle_stage": stage,
        "source_channel": channel,
        "registered_at": registered_at,
        "birthday_month": month,
        "owner_id": f"sales-{index % 50:02d}" if draws[5] < 0.6 else None,
    }
    custom: dict[str, Any] = {"skin_type": skin}
    if draws[6] < 0.3:
        custom["interests"] = sorted({INTERESTS[k] for k in rng.integers(0, 6, size=2)})
    return CustomerFacts.model_construct(
        customer_id=f"cus_{index:08d}",
        attributes={k: v for k, v in attributes.items() if v is not None},
        custom={k: v for k, v in custom.items() if v is not None},
        stats=PurchaseFacts.model_construct(
            order_count=orders,
            total_amount=spent,
            refunded_amount=refunded,
            first_purchase_at=last - orders * 30 * DAY if last else None,
            last_purchase_at=last,
        ),
        tags=_tags(rng, draws[7]),
        behaviour=_behaviour(rng) if draws[7] < ACTIVE_SHARE else {},
        consents={"sms.marketing": bool(draws[4] < 0.8)} if draws[3] < 0.6 else {},
    )


def _tags(rng: np.random.Generator, draw: float) -> dict[str, TagAssignment]:
    tags: dict[str, TagAssignment] = {}
    if draw < 0.05:
        tags["vip"] = TagAssignment.model_construct(value=None, expires_at=None)
    if draw < 0.3:
        level = LEVELS[int(rng.integers(0, 3))]
        tags["level"] = TagAssignment.model_construct(value=level, expires_at=None)
    if 0.2 < draw < 0.4:
        score = int(rng.integers(0, 100))
        tags["score"] = TagAssignment.model_construct(value=score, expires_at=None)
    if 0.5 < draw < 0.6:  # half of them already expired
        expires = NOW + int(rng.integers(-30, 30)) * DAY
        tags["coupon_fan"] = TagAssignment.model_construct(value=None, expires_at=expires)
    return tags


def _behaviour(rng: np.random.Generator) -> dict[tuple[str, str, str], dict[dt.date, int]]:
    """One to three (kind, category) series over the last 60 days; each event also counts in
    the kind's untargeted series, as the facts consumer records it."""
    series: dict[tuple[str, str, str], dict[dt.date, int]] = {}
    for _ in range(int(rng.integers(1, 4))):
        kind, category = KINDS[int(rng.integers(0, 4))], CATEGORIES[int(rng.integers(0, 8))]
        days = int(rng.integers(1, 7))
        for days_ago, count in zip(
            rng.integers(0, 60, size=days), rng.integers(1, 6, size=days), strict=True
        ):
            day = TODAY - int(days_ago) * DAY
            for key in ((kind, "category", category), (kind, "", "")):
                daily = series.setdefault(key, {})
                daily[day] = daily.get(day, 0) + int(count)
    return series


# ------------------------------------------------------------------------------ rules


def viewed(category: str, times: int, days: int, kind: str = "product_view") -> Node:
    target = {"key": "category", "value": category}
    return BehaviourCondition.model_validate(
        {"kind": kind, "target": target, "count": times, "within_days": days}
    )


SMALL = all_of(attr("gender", "eq", "female"), attr("lifecycle_stage", "in", ["customer"]))
MEDIUM = all_of(
    attr("gender", "eq", "female"),
    attr("total_amount", "gte", 30_000),
    attr("last_purchase_at", "within_last_days", 365),
    any_of(
        attr("source_channel", "in", ["mini_program", "app"]), attr("custom.skin_type", "eq", "dry")
    ),
    viewed("baby", 1, 60),
    negate(tag("level", "eq", "bronze")),
)
LARGE = any_of(
    all_of(
        attr("lifecycle_stage", "in", ["customer", "at_risk"]),
        attr("order_count", "gte", 3),
        attr("net_amount", "between", [30_000, 500_000]),
        attr("refund_rate", "lte", 0.3),
        any_of(attr("birthday_month", "between", [6, 7]), attr("birthday_month", "eq", 6)),
        attr("consent.sms.marketing", "is_true"),
        negate(attr("owner_id", "in", ["sales-00", "sales-01"])),
    ),
    all_of(
        attr("recency_days", "gte", 180),
        attr("order_count", "gte", 1),
        negate(tag("vip")),
        any_of(viewed("toys", 1, 60, "search"), viewed("tea", 3, 60), tag("score", "gte", 80)),
        attr("registered_at", "before", "2025-01-01"),
    ),
    all_of(
        segment("medium"),
        attr("custom.interests", "contains_any", ["tea", "yoga"]),
        negate(attr("custom.interests", "contains", "golf")),
    ),
    all_of(
        tag("coupon_fan"),
        attr("source_channel", "ne", "import"),
        viewed("beauty", 1, 7, "add_to_cart"),
        attr("gender", "in", ["female", "other"]),
        negate(attr("lifecycle_stage", "eq", "churned")),
        attr("first_purchase_at", "within_last_days", 730),
    ),
)
#: The tenant's segments in the real-time part; `large` refers to `medium`.
SEGMENTS: dict[str, Node] = {
    "small": SMALL,
    "medium": MEDIUM,
    "large": LARGE,
    "vip": tag("vip"),
    "at_risk": all_of(attr("recency_days", "gte", 180), attr("order_count", "gte", 1)),
    "young_parents": viewed("baby", 2, 30),
    "big_spenders": attr("net_amount", "gte", 200_000),
    "sms_reachable": all_of(attr("consent.sms.marketing", "is_true"), attr("gender", "exists")),
    "new_this_month": attr("registered_at", "within_last_days", 30),
    "gold": tag("level", "eq", "gold"),
}
BUILDS = (("small", SMALL), ("medium", MEDIUM), ("large", LARGE))


def leaf_count(rule: Node) -> int:
    return sum(1 for _ in leaves(rule))


# ---------------------------------------------------------------- the engine, timed


@dataclass(frozen=True)
class Build:
    rule: str
    leaves: int
    members: int
    #: Median of the warm runs, and the fastest.
    seconds: float
    best_seconds: float


@dataclass(frozen=True)
class RealTime:
    events: int
    seconds: float
    p50_ms: float
    p99_ms: float
    upsert_p99_ms: float
    joined: int
    left: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else float("inf")


@dataclass(frozen=True)
class EngineResults:
    customers: int
    load_seconds: float
    builds: list[Build]
    real_time: RealTime


def run_engine(customer_count: int, events: int, *, seed: int = 7) -> EngineResults:
    """The pure part: no broker, no store."""
    audience = AudienceEngine().tenant("bench")
    rng = np.random.default_rng(seed + 1)
    chosen = set(rng.choice(customer_count, size=min(events, customer_count), replace=False))
    kept: list[CustomerFacts] = []
    load_seconds = 0.0
    for chunk in customers(customer_count, seed=seed):
        kept += [c for c in chunk if int(c.customer_id[4:]) in chosen]
        started = time.perf_counter()
        audience.upsert_many(chunk)
        load_seconds += time.perf_counter() - started
    builds = [time_build(audience, name, rule) for name, rule in BUILDS]
    return EngineResults(customer_count, load_seconds, builds, time_real_time(audience, kept))


def time_build(audience: TenantAudience, name: str, rule: Node) -> Build:
    audience.evaluate(rule, NOW, SEGMENTS)  # warm: first-touch of columns, series compaction
    timings = []
    for _ in range(BUILD_RUNS):
        started = time.perf_counter()
        members = audience.evaluate(rule, NOW, SEGMENTS).count
        timings.append(time.perf_counter() - started)
    return Build(name, leaf_count(rule), members, statistics.median(timings), min(timings))


def changed(facts: CustomerFacts, index: int) -> CustomerFacts:
    """What one event does to a customer: a product view, an order, a tag or a profile edit."""
    match index % 4:
        case 0:
            behaviour = {k: dict(v) for k, v in facts.behaviour.items()}
            for key in (("product_view", "category", "baby"), ("product_view", "", "")):
                daily = behaviour.setdefault(key, {})
                daily[TODAY] = daily.get(TODAY, 0) + 1
            return facts.model_copy(update={"behaviour": behaviour})
        case 1:
            stats = facts.stats.model_copy(
                update={
                    "order_count": facts.stats.order_count + 1,
                    "total_amount": facts.stats.total_amount + 60_000,
                    "last_purchase_at": NOW,
                    "first_purchase_at": facts.stats.first_purchase_at or NOW,
                }
            )
            return facts.model_copy(update={"stats": stats})
        case 2:
            tags = {**facts.tags, "level": TagAssignment.model_construct(value="gold")}
            return facts.model_copy(update={"tags": tags})
        case _:
            attributes = {**facts.attributes, "gender": "female", "lifecycle_stage": "customer"}
            return facts.model_copy(update={"attributes": attributes})


def time_real_time(audience: TenantAudience, kept: list[CustomerFacts]) -> RealTime:
    predicates = [
        CompiledSegment(sid, compile_rule(SEGMENTS[sid])) for sid in dependency_order(SEGMENTS)
    ]
    before = {c.customer_id: memberships(predicates, c, NOW) for c in kept}
    updates = [changed(c, i) for i, c in enumerate(kept)]  # the facts consumer's part
    latencies, upserts, joined, left = [], [], 0, 0
    for facts in updates:
        started = time.perf_counter()
        audience.upsert(facts)
        upserted = time.perf_counter()
        after = memberships(predicates, facts, NOW)
        change = membership_change(before[facts.customer_id], after, SEGMENTS)
        finished = time.perf_counter()
        joined, left = joined + len(change.joined), left + len(change.left)
        latencies.append(finished - started)
        upserts.append(upserted - started)
    return RealTime(
        events=len(updates),
        seconds=sum(latencies),
        p50_ms=_percentile(latencies, 50),
        p99_ms=_percentile(latencies, 99),
        upsert_p99_ms=_percentile(upserts, 99),
        joined=joined,
        left=left,
    )


def _percentile(seconds: list[float], q: float) -> float:
    return float(np.percentile(seconds, q)) * 1000 if seconds else 0.0


# ------------------------------------------------------------------ the yardstick


async def measure_scan_rate(mongodb_uri: str, docs: int) -> list[Measurement]:
    """`raw_capacity`'s batched insert and scan, on a database of their own."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri)
    database = client[f"bench_segment_{uuid.uuid4().hex[:8]}"]
    collection = database.get_collection("batched", write_concern=WriteConcern("majority"))
    try:
        await client.admin.command("ping")
        return [await measure_insert_many(collection, docs), await measure_scan(collection)]
    finally:
        await client.drop_database(database.name)
        await client.close()


# ------------------------------------------------------------------------ reporting


def report_lines(results: EngineResults, scan_rate: float) -> list[str]:
    n = results.customers
    scan_seconds = n / scan_rate
    lines = [
        f"store scan: {scan_rate:,.0f} docs/s -> a scan-based build of {n:,} customers "
        f"would take {scan_seconds:.1f} s",
        f"load (upsert_many): {results.load_seconds:.1f} s, "
        f"{n / results.load_seconds:,.0f} customers/s ({n / results.load_seconds / scan_rate:.1f}x "
        "the scan rate)",
    ]
    for build in results.builds:
        lines.append(
            f"build {build.rule:<6} ({build.leaves:>2} leaves, {build.members:>9,} members): "
            f"{build.seconds * 1000:7.1f} ms median, {build.best_seconds * 1000:7.1f} ms best; "
            f"{scan_seconds / build.seconds:,.0f}x faster than the scan"
        )
    rt = results.real_time
    lines.append(
        f"real time: {rt.events:,} events, {rt.rate:,.0f} events/s "
        f"({rt.rate / scan_rate:.2f}x the scan rate in docs/s), p50 {rt.p50_ms:.3f} ms, "
        f"p99 {rt.p99_ms:.3f} ms (upsert p99 {rt.upsert_p99_ms:.3f} ms); "
        f"{rt.joined:,} joined, {rt.left:,} left"
    )
    return lines


def results_document(
    results: EngineResults, raw: Sequence[Measurement], *, external: bool
) -> dict[str, Any]:
    scan_rate = next(m.rate for m in raw if m.key == "store_scan")
    return {
        "benchmark": "segment_build",
        "run_at": dt.datetime.now(dt.UTC).isoformat(),
        "infrastructure": "external" if external else "embedded (tansu + SecantusDB)",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "parameters": {"customers": results.customers, "build_runs": BUILD_RUNS},
        "raw_rates_per_s": {m.key: m.rate for m in raw},
        "scan_build_seconds": results.customers / scan_rate,
        "load_seconds": results.load_seconds,
        "builds": [
            {**asdict(b), "times_faster_than_scan": results.customers / scan_rate / b.seconds}
            for b in results.builds
        ],
        "real_time": {**asdict(results.real_time), "events_per_s": results.real_time.rate},
    }


# ------------------------------------------------------------------------------ CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.segment_build", description=__doc__)
    parser.add_argument("--customers", type=int, default=DEFAULT_CUSTOMERS)
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--scan-docs", type=int, default=DEFAULT_SCAN_DOCS)
    parser.add_argument(
        "--external",
        action="store_true",
        help="use MONGODB_URI instead of starting embedded servers",
    )
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    return parser


def _scan(args: argparse.Namespace) -> list[Measurement]:
    if args.external:
        try:
            return asyncio.run(measure_scan_rate(os.environ["MONGODB_URI"], args.scan_docs))
        except KeyError:
            raise SystemExit("--external needs MONGODB_URI in the environment") from None
    # Fresh servers on free ports, as the other benchmarks start them.
    with tempfile.TemporaryDirectory(prefix="bench-segment-") as data_dir:
        broker_port, store_port = free_ports(2)
        with EmbeddedInfra(InfraConfig(broker_port, store_port, Path(data_dir))) as infra:
            return asyncio.run(measure_scan_rate(infra.mongodb_uri, args.scan_docs))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    raw = _scan(args)
    results = run_engine(args.customers, args.events)
    scan_rate = next(m.rate for m in raw if m.key == "store_scan")
    print("\n".join(report_lines(results, scan_rate)))
    write_results(results_document(results, raw, external=args.external), args.output)
    print(f"\nresults written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
