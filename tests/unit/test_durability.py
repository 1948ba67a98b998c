"""Durability is fixed in one place: the Kafka and MongoDB client factories. These tests
read the clients they build (nothing connects) and scan the source so no module builds a
client around them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from servicekit.kafka import make_consumer, make_producer
from servicekit.mongo import make_mongo_client
from servicekit.settings import InfraSettings

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("servicekit", "services", "gateway", "contracts")
CLIENT_CLASSES = {"AIOKafkaProducer", "AIOKafkaConsumer", "AsyncMongoClient", "MongoClient"}
#: The factories, and the dead-letter reader (a group-less consumer with auto-commit off).
ALLOWED = {"servicekit/kafka.py", "servicekit/mongo.py", "servicekit/deadletter.py"}
NOWHERE = "127.0.0.1:1"  # construction never connects; a dead address proves it


def infra_settings(**overrides: object) -> InfraSettings:
    return InfraSettings(kafka_bootstrap_servers=NOWHERE, **overrides)


# --------------------------------------------------------------------------- kafka

ACKS_ALL = -1  # aiokafka's Sender keeps acks="all" as -1


@pytest.mark.parametrize("idempotent", [False, True])
async def test_the_producer_waits_for_all_replicas(idempotent: bool) -> None:
    producer = make_producer(infra_settings(kafka_idempotent_producer=idempotent), client_id="t")
    try:
        assert producer._sender._acks == ACKS_ALL
    finally:
        await producer.stop()


async def test_the_producer_is_idempotent_when_the_broker_supports_it() -> None:
    producer = make_producer(infra_settings(kafka_idempotent_producer=True), client_id="t")
    try:
        assert producer._txn_manager is not None  # aiokafka's idempotence state
    finally:
        await producer.stop()


async def test_the_producer_is_not_idempotent_on_the_embedded_broker() -> None:
    producer = make_producer(infra_settings(kafka_idempotent_producer=False), client_id="t")
    try:
        assert producer._txn_manager is None
    finally:
        await producer.stop()


async def test_the_consumer_commits_offsets_by_hand() -> None:
    consumer = make_consumer(
        infra_settings(), "scrm.customer.events", group_id="g.one", client_id="t"
    )
    try:
        assert consumer._enable_auto_commit is False
        assert consumer._group_id == "g.one"
        assert consumer._isolation_level == "read_committed"
        assert consumer._auto_offset_reset == "earliest"
    finally:
        await consumer.stop()


# --------------------------------------------------------------------------- mongodb

WEAK_URI = (
    "mongodb://127.0.0.1:1/?replicaSet=rs0"
    "&w=1&readConcernLevel=local&retryWrites=false&retryReads=false"
)


async def test_the_store_client_insists_on_majority_and_retries_over_the_uri() -> None:
    client = make_mongo_client(WEAK_URI, app_name="durability-test")
    try:
        assert client.write_concern.document == {"w": "majority"}
        assert client.read_concern.level == "majority"
        assert client.options.retry_writes is True
        assert client.options.retry_reads is True
    finally:
        await client.close()


async def test_the_store_client_returns_aware_datetimes_and_names_itself() -> None:
    client = make_mongo_client("mongodb://127.0.0.1:1/", app_name="durability-test")
    try:
        assert client.codec_options.tz_aware is True
        assert client.options.pool_options.metadata["application"] == {"name": "durability-test"}
    finally:
        await client.close()


# --------------------------------------------------------------------------- source scan


def client_constructions(source: str, where: str) -> list[str]:
    """`where:line Class(` for every call building a broker or store client, aliases too."""
    tree = ast.parse(source, filename=where)
    names = {name: name for name in CLIENT_CLASSES}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names.update({a.asname: a.name for a in node.names if a.asname and a.name in names})
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if called in names:
                found.append((node.lineno, names[called]))
    return [f"{where}:{line} {name}(" for line, name in sorted(found)]


def constructions_in(path: Path) -> list[str]:
    return client_constructions(path.read_text(), path.relative_to(ROOT).as_posix())


def scanned_files() -> list[Path]:
    return sorted(p for top in SCANNED for p in (ROOT / top).rglob("*.py"))


def test_the_scan_sees_the_factories() -> None:
    found = constructions_in(ROOT / "servicekit" / "kafka.py")
    assert any(f.endswith(" AIOKafkaProducer(") for f in found)
    assert any(f.endswith(" AIOKafkaConsumer(") for f in found)


def test_the_scan_sees_aliased_and_qualified_clients() -> None:
    source = (
        "import aiokafka, pymongo\n"
        "from pymongo import AsyncMongoClient as Store\n"
        "a = Store('mongodb://x')\n"
        "b = pymongo.MongoClient('mongodb://x')\n"
        "c = aiokafka.AIOKafkaConsumer('t', enable_auto_commit=True)\n"
    )
    assert client_constructions(source, "probe.py") == [
        "probe.py:3 AsyncMongoClient(",
        "probe.py:4 MongoClient(",
        "probe.py:5 AIOKafkaConsumer(",
    ]


def test_only_the_factories_build_broker_and_store_clients() -> None:
    files = scanned_files()
    assert len(files) > 20, "the scan found too few files; did the layout move?"
    offenders = [
        hit
        for path in files
        if path.relative_to(ROOT).as_posix() not in ALLOWED
        for hit in constructions_in(path)
    ]
    assert offenders == [], (
        "build Kafka and MongoDB clients with servicekit.kafka.make_producer/make_consumer "
        f"and servicekit.mongo.make_mongo_client, which fix their durability: {offenders}"
    )
