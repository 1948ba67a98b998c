"""Kafka clients with durability fixed in one place."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from servicekit.settings import InfraSettings


def make_producer(settings: InfraSettings, *, client_id: str) -> AIOKafkaProducer:
    """acks=all always; the idempotent producer where the broker supports it (Apache Kafka
    does, the embedded tansu does not)."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=settings.kafka_idempotent_producer,
        linger_ms=5,
        request_timeout_ms=30_000,
    )


def make_consumer(
    settings: InfraSettings, *topics: str, group_id: str, client_id: str
) -> AIOKafkaConsumer:
    """Offsets are committed by hand, only after the effect is durable."""
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=500,
    )


def make_reader(
    settings: InfraSettings, *, client_id: str, fetch_max_wait_ms: int = 500
) -> AIOKafkaConsumer:
    """A consumer outside any group, for partitions assigned by hand (a live view that
    follows a topic from where it is told to start): it joins nothing, so it is ready at
    once, and it commits nothing."""
    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=client_id,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        fetch_max_wait_ms=fetch_max_wait_ms,
    )


async def ensure_topics(
    settings: InfraSettings, topics: list[str], *, partitions: int, replication: int
) -> None:
    """Create the topics a service reads or writes if they are missing, so a consumer never
    waits on a topic nobody has produced to yet. Existing topics are left as they are."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, client_id="scrm-topic-setup"
    )
    await admin.start()
    try:
        missing = set(topics) - set(await admin.list_topics())
        if missing:
            await admin.create_topics(
                [
                    NewTopic(t, num_partitions=partitions, replication_factor=replication)
                    for t in sorted(missing)
                ]
            )
    except TopicAlreadyExistsError:
        pass  # another replica created it first
    finally:
        await admin.close()
