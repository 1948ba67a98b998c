"""Raw capacity of the broker and the store, with no service code in the way.

Every other benchmark reports its throughput as a ratio against these numbers, measured in
the same run on the same machine, so results stay comparable across laptops and CI runners.

    python -m bench.raw_capacity [--messages N] [--docs N] [--external]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.write_concern import WriteConcern

from devstack import EmbeddedInfra, InfraConfig, free_ports

T = TypeVar("T")

DEFAULT_MESSAGES = 50_000
DEFAULT_DOCS = 2_000
#: Batched inserts and the scan run on this many times `docs` documents: they are one to
#: two orders of magnitude faster than single writes, and a handful of batches would be
#: too short a sample to time.
BULK_SCALE = 10
#: Services write outbox entries and imports in batches of this size.
INSERT_BATCH = 500
#: The partition count services create their topics with (KAFKA_TOPIC_PARTITIONS).
TOPIC_PARTITIONS = 4
MESSAGE_BYTES = 500
RESULTS_PATH = Path(__file__).parent / "results" / "raw_capacity.json"

Doc = dict[str, Any]


@dataclass(frozen=True)
class Measurement:
    """`count` operations (messages or documents) done in `seconds`."""

    #: Stable name other benchmarks divide by (see measure_raw_capacity).
    key: str
    #: Human-readable label for the table.
    metric: str
    count: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("inf")


class _Stopwatch:
    def __enter__(self) -> _Stopwatch:
        self._start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start


# --------------------------------------------------------------------------- broker


def event_message(index: int, size: int = MESSAGE_BYTES) -> bytes:
    """A JSON event shaped like the services' envelopes, padded to about `size` bytes."""
    payload: dict[str, Any] = {"customer_id": f"c-{index:08d}", "points": index % 100}
    event = {
        "event_id": str(uuid.uuid4()),
        "type": "customer.points_earned",
        "version": 1,
        "tenant_id": "bench-tenant",
        "occurred_at": dt.datetime.now(dt.UTC).isoformat(),
        "trace_id": uuid.uuid4().hex,
        "payload": payload,
    }
    payload["note"] = ""
    unpadded = len(json.dumps(event, separators=(",", ":")))
    payload["note"] = "x" * max(0, size - unpadded)
    return json.dumps(event, separators=(",", ":")).encode()


async def _create_topic(bootstrap: str, topic: str) -> None:
    # Created up front so topic creation is not inside the timed produce, and so the run
    # also works against a Kafka cluster with auto-creation switched off.
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topic, num_partitions=TOPIC_PARTITIONS, replication_factor=1)]
        )
    except TopicAlreadyExistsError:
        pass
    finally:
        await admin.close()


async def measure_produce(bootstrap: str, topic: str, messages: int) -> Measurement:
    """Messages/s produced with acks=all, batched by keeping many sends in flight."""
    payloads = [event_message(i) for i in range(messages)]  # built outside the timing
    keys = [f"c-{i % 1000:08d}".encode() for i in range(messages)]
    # acks=all without idempotence: the most durable setting tansu accepts. A short
    # linger and larger batches are what lets send() futures pile into few requests.
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=256 * 1024
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"{}", key=b"warm-up")  # metadata, connections
        with _Stopwatch() as watch:
            futures = [
                await producer.send(topic, value, key=key)
                for key, value in zip(keys, payloads, strict=True)
            ]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return Measurement("broker_produce", "broker produce (acks=all)", messages, watch.seconds)


async def measure_consume(bootstrap: str, topic: str, expected: int) -> Measurement:
    """Messages/s read from the beginning of every partition, without a group join."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()  # a consumer without a subscription has no metadata yet
        partition_ids = sorted(consumer.partitions_for_topic(topic) or [])
        partitions = [TopicPartition(topic, p) for p in partition_ids]
        consumer.assign(partitions)
        received = 0
        with _Stopwatch() as watch:
            await consumer.seek_to_beginning(*partitions)
            while received < expected:
                batches = await consumer.getmany(timeout_ms=5000, max_records=10_000)
                if not batches:
                    raise RuntimeError(f"consume stalled at {received} of {expected} messages")
                received += sum(len(records) for records in batches.values())
    finally:
        await consumer.stop()
    return Measurement("broker_consume", "broker consume (assigned)", received, watch.seconds)


async def measure_broker(bootstrap: str, messages: int) -> list[Measurement]:
    topic = f"bench-raw-{uuid.uuid4().hex[:8]}"
    await _create_topic(bootstrap, topic)
    produce = await measure_produce(bootstrap, topic, messages)
    consume = await measure_consume(bootstrap, topic, messages + 1)  # + the warm-up
    return [produce, consume]


# ---------------------------------------------------------------------------- store


def customer_doc(index: int) -> Doc:
    """A customer-sized document (~300 bytes of BSON) with a version for optimistic updates."""
    return {
        "_id": f"c-{index:08d}",
        "tenant_id": "bench-tenant",
        "name": f"Customer {index}",
        "email": f"customer{index}@example.com",
        "tags": ["vip", "newsletter"],
        "points": 0,
        "version": 0,
        "created_at": dt.datetime.now(dt.UTC),
    }


async def measure_insert_one(collection: AsyncCollection[Doc], docs: int) -> Measurement:
    """One insert_one at a time: the cost of a request that writes one document."""
    documents = [customer_doc(i) for i in range(docs)]
    with _Stopwatch() as watch:
        for document in documents:
            await collection.insert_one(document)
    return Measurement("store_insert_one", "store insert_one", docs, watch.seconds)


async def measure_insert_many(collection: AsyncCollection[Doc], docs: int) -> Measurement:
    """Documents/s written with insert_many in batches of INSERT_BATCH."""
    documents = [customer_doc(i) for i in range(docs)]
    with _Stopwatch() as watch:
        for start in range(0, docs, INSERT_BATCH):
            await collection.insert_many(documents[start : start + INSERT_BATCH], ordered=False)
    return Measurement(
        "store_insert_many", f"store insert_many ({INSERT_BATCH}/batch)", docs, watch.seconds
    )


async def measure_conditional_update(collection: AsyncCollection[Doc], docs: int) -> Measurement:
    """update_one guarded by the version read earlier: the optimistic-concurrency write."""
    with _Stopwatch() as watch:
        for i in range(docs):
            result = await collection.update_one(
                {"_id": f"c-{i:08d}", "version": 0}, {"$inc": {"version": 1, "points": 10}}
            )
            if result.modified_count != 1:
                raise RuntimeError(f"conditional update of c-{i:08d} matched nothing")
    return Measurement("store_update_one", "store update_one (if version)", docs, watch.seconds)


async def measure_scan(collection: AsyncCollection[Doc]) -> Measurement:
    """Documents/s streamed by one find() over the whole collection."""
    with _Stopwatch() as watch:
        count = 0
        async for _ in collection.find({}):
            count += 1
    return Measurement("store_scan", "store scan (find all)", count, watch.seconds)


async def measure_store(mongodb_uri: str, docs: int) -> list[Measurement]:
    client: AsyncMongoClient[Doc] = AsyncMongoClient(mongodb_uri)
    database = client[f"bench_raw_{uuid.uuid4().hex[:8]}"]
    # Majority: what production uses; on a single node it costs nothing extra but keeps
    # the numbers honest if this is pointed at a real replica set.
    majority = WriteConcern("majority")
    singles = database.get_collection("singles", write_concern=majority)
    batched = database.get_collection("batched", write_concern=majority)
    try:
        await client.admin.command("ping")
        return [
            await measure_insert_one(singles, docs),
            await measure_insert_many(batched, docs * BULK_SCALE),
            await measure_conditional_update(singles, docs),
            await measure_scan(batched),
        ]
    finally:
        await client.drop_database(database.name)
        await client.close()


# ------------------------------------------------------------------------ reporting


async def run_raw_capacity(
    bootstrap: str, mongodb_uri: str, *, messages: int, docs: int
) -> list[Measurement]:
    """Every measurement, broker first, then store (they never run at the same time)."""
    return [*await measure_broker(bootstrap, messages), *await measure_store(mongodb_uri, docs)]


async def measure_raw_capacity(
    bootstrap: str, mongodb_uri: str, *, messages: int, docs: int
) -> dict[str, float]:
    """Operations per second by key, for other benchmarks to divide by:

    broker_produce, broker_consume, store_insert_one, store_insert_many, store_update_one,
    store_scan.
    """
    measurements = await run_raw_capacity(bootstrap, mongodb_uri, messages=messages, docs=docs)
    return rates(measurements)


def rates(measurements: Sequence[Measurement]) -> dict[str, float]:
    return {m.key: m.rate for m in measurements}


def format_table(measurements: Sequence[Measurement]) -> str:
    header = ("metric", "count", "seconds", "rate/s")
    rows = [(m.metric, f"{m.count:,}", f"{m.seconds:.2f}", f"{m.rate:,.0f}") for m in measurements]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        # The metric name reads left to right; numbers line up on their last digit.
        first, *numbers = cells
        right = (cell.rjust(width) for cell, width in zip(numbers, widths[1:], strict=True))
        return "  ".join([first.ljust(widths[0]), *right])

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def results_document(
    measurements: Sequence[Measurement], *, external: bool, messages: int, docs: int
) -> dict[str, Any]:
    return {
        "benchmark": "raw_capacity",
        "run_at": dt.datetime.now(dt.UTC).isoformat(),
        "infrastructure": "external" if external else "embedded (tansu + SecantusDB)",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "parameters": {"messages": messages, "docs": docs, "message_bytes": MESSAGE_BYTES},
        "rates_per_s": rates(measurements),
        "measurements": [{**asdict(m), "rate_per_s": m.rate} for m in measurements],
    }


def write_results(document: dict[str, Any], path: Path = RESULTS_PATH) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Results are per machine and per run: keep them out of git.
    ignore = path.parent / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*.json\n")
    path.write_text(json.dumps(document, indent=2) + "\n")


# ------------------------------------------------------------------------------ CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.raw_capacity", description=__doc__)
    parser.add_argument("--messages", type=int, default=DEFAULT_MESSAGES)
    parser.add_argument("--docs", type=int, default=DEFAULT_DOCS)
    parser.add_argument(
        "--external",
        action="store_true",
        help="use KAFKA_BOOTSTRAP_SERVERS and MONGODB_URI instead of starting embedded servers",
    )
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    return parser


def infrastructure_arguments(parser: argparse.ArgumentParser, results_path: Path) -> None:
    """The options every benchmark takes: where the servers are, where results go."""
    parser.add_argument(
        "--external",
        action="store_true",
        help="use KAFKA_BOOTSTRAP_SERVERS and MONGODB_URI instead of starting embedded servers",
    )
    parser.add_argument("--output", type=Path, default=results_path)


def run_benchmark(
    args: argparse.Namespace,
    prefix: str,
    run: Callable[[str, str], Coroutine[Any, Any, dict[str, Any]]],
) -> dict[str, Any]:
    """Run `run(bootstrap, mongodb_uri)` on the infrastructure `args` name and write the
    results document it returns to `args.output`."""
    document = on_infrastructure(
        args.external, prefix, lambda kafka, mongo: asyncio.run(run(kafka, mongo))
    )
    write_results(document, args.output)
    print(f"\nresults written to {args.output}", file=sys.stderr)
    return document


def _external_addresses() -> tuple[str, str]:
    try:
        return os.environ["KAFKA_BOOTSTRAP_SERVERS"], os.environ["MONGODB_URI"]
    except KeyError as missing:
        raise SystemExit(f"--external needs {missing.args[0]} in the environment") from None


def on_infrastructure(external: bool, prefix: str, run: Callable[[str, str], T]) -> T:
    """`run(bootstrap, mongodb_uri)` against the servers KAFKA_BOOTSTRAP_SERVERS and
    MONGODB_URI name (`external`), or against fresh embedded servers on free ports, which
    never disturb (or are disturbed by) a running devstack. Every benchmark starts this way."""
    if external:
        return run(*_external_addresses())
    with tempfile.TemporaryDirectory(prefix=prefix) as data_dir:
        broker_port, store_port = free_ports(2)
        with EmbeddedInfra(InfraConfig(broker_port, store_port, Path(data_dir))) as infra:
            return run(infra.kafka_bootstrap_servers, infra.mongodb_uri)


def _run(bootstrap: str, mongodb_uri: str, args: argparse.Namespace) -> list[Measurement]:
    return asyncio.run(
        run_raw_capacity(bootstrap, mongodb_uri, messages=args.messages, docs=args.docs)
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    measurements = on_infrastructure(
        args.external, "bench-raw-", lambda kafka, mongo: _run(kafka, mongo, args)
    )
    print(format_table(measurements))
    write_results(
        results_document(
            measurements, external=args.external, messages=args.messages, docs=args.docs
        ),
        args.output,
    )
    print(f"\nresults written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
