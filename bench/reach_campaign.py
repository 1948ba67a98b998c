"""A reach campaign to 100,000 customers through the sandbox provider, as messages per
second against the raw produce rate of the same broker (and batched inserts of the same
store) measured in the same run.

    python -m bench.reach_campaign [--customers N] [--external]

What runs: the real tagging service on a loopback socket answers the member pages of a
frozen segment snapshot (written through tagging's own store, untimed), every customer has
marketing SMS consent in reach's read model (seeded in bulk, untimed), and the campaign's
job runs in the reach runtime exactly as in production: pages of 200 members over HTTP,
variant assignment, the contact-pressure check (consent, caps, quiet hours off), the
reservation of each message with its cap slots, the sandbox provider, and the settlement
with a `message_sent` and a `message_delivered` event per message in one transaction per
page. What is timed:
- campaign: from the job's claim to its end, messages delivered per second;
- relay drain: the outbox relay is held back during the campaign, then timed until every
  event is published (acks=all).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import socket
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvicorn

from bench.raw_capacity import (
    Measurement,
    format_table,
    on_infrastructure,
    rates,
    run_raw_capacity,
    write_results,
)
from servicekit.jobs import JobRunner, JobStore
from servicekit.runtime import Runtime
from services.reach import store
from services.reach.domain.campaigns import Audience, Variant
from services.reach.domain.channels import Channel
from services.reach.domain.pressure import Policy
from services.reach.domain.templates import Content
from services.reach.service import campaigns
from services.reach.service.campaigns import NewCampaign
from services.reach.service.wiring import reach_of
from services.reach.settings import ReachSettings
from services.reach.store.audience import CONSENTS, consent_key
from services.tagging.main import create_app as create_tagging
from services.tagging.settings import TaggingSettings
from services.tagging.store.snapshots import Snapshot, SnapshotStore

DEFAULT_CUSTOMERS = 100_000
RAW_MESSAGES = 50_000
RAW_DOCS = 2_000
TENANT = "bench"
RESULTS_PATH = Path(__file__).parent / "results" / "reach_campaign.json"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _serve_tagging(
    bootstrap: str, mongodb_uri: str, database: str
) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    settings = TaggingSettings(
        kafka_bootstrap_servers=bootstrap,
        mongodb_uri=mongodb_uri,
        mongodb_database=database,
        kafka_group_prefix=f"bench-{uuid.uuid4().hex[:8]}.",
    )
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_tagging(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    return server, task, f"http://127.0.0.1:{port}"


async def seed(runtime: Runtime, tagging_db: Any, customers: int) -> tuple[str, str]:
    """The snapshot in tagging, consent and the policy in reach: untimed set-up."""
    ids = sorted(f"cus_{i:08d}" for i in range(customers))
    segment_id, snapshot_id = f"seg_{uuid.uuid4().hex}", f"snp_{uuid.uuid4().hex}"
    snapshot = Snapshot(
        snapshot_id=snapshot_id,
        tenant=TENANT,
        segment_id=segment_id,
        build_id="bench",
        rule_version=1,
        count=customers,
        taken_at=dt.datetime.now(dt.UTC),
    )
    await SnapshotStore(tagging_db).write(snapshot, ids)
    now = dt.datetime.now(dt.UTC)
    consents = runtime.db[CONSENTS]
    for at in range(0, customers, 5_000):
        await consents.insert_many(
            [
                {
                    "_id": consent_key(TENANT, c, "sms", "marketing"),
                    "tenant": TENANT,
                    "customer_id": c,
                    "channel": "sms",
                    "purpose": "marketing",
                    "granted": True,
                    "changed_at": now,
                }
                for c in ids[at : at + 5_000]
            ],
            ordered=False,
        )
    reach = reach_of(runtime)
    await reach.audience.save_policy(TENANT, Policy(quiet_start=dt.time(0), quiet_end=dt.time(0)))
    content = Content(
        sign_name="品牌商城",
        body="{{customer_name}}您好, 双十一会员日{{coupon_amount}}元券 {{link}}",
    )
    await reach.template_service.create(
        TENANT,
        "bench",
        channel=Channel.SMS,
        name="bench",
        content=content,
        defaults={"customer_name": "会员", "coupon_amount": "20"},
        by="bench",
    )
    return segment_id, snapshot_id


async def measure_campaign(
    runtime: Runtime, segment_id: str, snapshot_id: str, customers: int
) -> Measurement:
    reach = reach_of(runtime)
    new = NewCampaign(
        name="bench",
        channel=Channel.SMS,
        audience=Audience(segment_id=segment_id, snapshot_id=snapshot_id),
        variants=[Variant(variant_id="A", template_id="bench")],
        rate_per_second=100_000,
        send_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
    )
    campaign = await campaigns.create(reach, TENANT, new, "bench")
    started = await campaigns.start(runtime, campaign, "bench")
    runner = JobRunner({campaigns.JOB_KIND: campaigns.run}, lease_seconds=120)
    began = time.perf_counter()
    ran = await runner.round(JobStore(runtime.db), runtime)
    seconds = time.perf_counter() - began
    job = await JobStore(runtime.db).get(TENANT, started.job_id or "")
    assert ran and job is not None and job.state == "succeeded", job
    delivered = await runtime.db["messages"].count_documents(
        {"tenant": TENANT, "status": "delivered"}
    )
    if delivered != customers:
        raise RuntimeError(f"{delivered} of {customers} messages delivered")
    return Measurement("campaign", "campaign messages (sandbox, delivered)", delivered, seconds)


async def measure_relay_drain(runtime: Runtime) -> Measurement:
    relay = runtime.relay
    before = relay.published
    began = time.perf_counter()
    while await relay.publish_pending():
        pass
    seconds = time.perf_counter() - began
    return Measurement(
        "relay_drain", "outbox relay drain (events)", relay.published - before, seconds
    )


async def run_bench(
    bootstrap: str, mongodb_uri: str, customers: int
) -> tuple[list[Measurement], list[Measurement]]:
    raw = await run_raw_capacity(bootstrap, mongodb_uri, messages=RAW_MESSAGES, docs=RAW_DOCS)
    suffix = uuid.uuid4().hex[:8]
    settings = ReachSettings(
        kafka_bootstrap_servers=bootstrap,
        mongodb_uri=mongodb_uri,
        mongodb_database=f"bench_reach_{suffix}",
        kafka_group_prefix=f"bench-{suffix}.",
    )
    server, task, tagging_url = await _serve_tagging(
        bootstrap, mongodb_uri, f"bench_tagging_{suffix}"
    )
    settings.tagging_base_url = tagging_url
    runtime = await Runtime.start(
        settings, indexes=store.INDEXES, subscriptions=[], run_relay=False
    )
    try:
        tagging_db = runtime.client[f"bench_tagging_{suffix}"]
        segment_id, snapshot_id = await seed(runtime, tagging_db, customers)
        service = [
            await measure_campaign(runtime, segment_id, snapshot_id, customers),
            await measure_relay_drain(runtime),
        ]
    finally:
        await reach_of(runtime).close()
        await runtime.client.drop_database(settings.mongodb_database)
        await runtime.client.drop_database(f"bench_tagging_{suffix}")
        await runtime.stop()
        server.should_exit = True
        await task
    return raw, service


def results_document(
    raw: Sequence[Measurement], service: Sequence[Measurement], customers: int, external: bool
) -> dict[str, Any]:
    raw_rates = rates(raw)
    return {
        "benchmark": "reach_campaign",
        "run_at": dt.datetime.now(dt.UTC).isoformat(),
        "infrastructure": "external" if external else "embedded (tansu + SecantusDB)",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "parameters": {"customers": customers, "page": campaigns.PAGE},
        "raw_rates_per_s": raw_rates,
        "service": [
            {
                "key": m.key,
                "metric": m.metric,
                "count": m.count,
                "seconds": m.seconds,
                "rate_per_s": m.rate,
                "ratio_to_broker_produce": m.rate / raw_rates["broker_produce"],
                "ratio_to_store_insert_many": m.rate / raw_rates["store_insert_many"],
            }
            for m in service
        ],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reach_campaign", description=__doc__)
    parser.add_argument("--customers", type=int, default=DEFAULT_CUSTOMERS)
    parser.add_argument(
        "--external", action="store_true", help="use KAFKA_BOOTSTRAP_SERVERS and MONGODB_URI"
    )
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)
    raw, service = on_infrastructure(
        args.external,
        "bench-reach-",
        lambda kafka, mongo: asyncio.run(run_bench(kafka, mongo, args.customers)),
    )
    document = results_document(raw, service, args.customers, args.external)
    print(format_table(raw))
    print()
    for row in document["service"]:
        print(
            f"{row['metric']:<42} {row['count']:>9,} in {row['seconds']:7.2f}s"
            f" = {row['rate_per_s']:>9,.0f}/s"
            f"  ({row['ratio_to_broker_produce']:.1%} of broker produce,"
            f" {row['ratio_to_store_insert_many']:.1%} of store insert_many)"
        )
    write_results(document, args.output)
    print(f"\nresults written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
