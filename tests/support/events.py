"""Read back what the services published, validated against the contracts."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts import Envelope, Topic, event_class


async def published(
    bootstrap: str, *, tenant: str, topic: Topic = Topic.CUSTOMER
) -> list[Envelope]:
    """Every envelope of `tenant` on `topic` so far, each validated against its contract
    (a contract violation fails the test here)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [
            TopicPartition(str(topic), p) for p in consumer.partitions_for_topic(str(topic)) or ()
        ]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        envelopes: list[Envelope] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(*tps, timeout_ms=500)).values():
                envelopes.extend(Envelope.from_bytes(r.value) for r in records if r.value)
    finally:
        await consumer.stop()
    mine = [e for e in envelopes if e.tenant == tenant]
    for envelope in mine:
        event_class(envelope.type).model_validate(envelope.data)
    return mine


async def published_types(bootstrap: str, *, tenant: str) -> list[str]:
    return [e.type for e in await published(bootstrap, tenant=tenant)]
