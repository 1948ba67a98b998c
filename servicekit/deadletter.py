"""Inspect and replay the dead-letter topic.

    python -m servicekit.deadletter list [--group G]
    python -m servicekit.deadletter replay --group G [--from-offset N]

Replaying republishes each parked message to the topic it came from, with its key, value
and trace headers. Consumers are idempotent, so groups that had already handled an event
skip it; the group that parked it handles it now (or parks it again, with a new reason).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts import DEAD_LETTER_TOPIC
from servicekit.kafka import make_producer
from servicekit.settings import InfraSettings


@dataclass(frozen=True)
class DeadLetter:
    offset: int
    partition: int
    group: str
    topic: str
    reason: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]

    def summary(self) -> dict[str, object]:
        return {
            "partition": self.partition,
            "offset": self.offset,
            "group": self.group,
            "topic": self.topic,
            "reason": self.reason,
        }


def _parse(record) -> DeadLetter:  # type: ignore[no-untyped-def]
    meta = {k: v.decode(errors="replace") for k, v in record.headers if k.startswith("dlq_")}
    return DeadLetter(
        offset=record.offset,
        partition=record.partition,
        group=meta.get("dlq_group", ""),
        topic=meta.get("dlq_topic", ""),
        reason=meta.get("dlq_reason", ""),
        key=record.key,
        value=record.value,
        headers=[(k, v) for k, v in record.headers if not k.startswith("dlq_")],
    )


async def read_dead_letters(
    settings: InfraSettings, *, group: str | None = None, from_offset: int = 0
) -> list[DeadLetter]:
    """Everything parked so far (up to the end offsets at the time of the call)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(DEAD_LETTER_TOPIC) or set()
        tps = [TopicPartition(DEAD_LETTER_TOPIC, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, from_offset)
        letters: list[DeadLetter] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batches = await consumer.getmany(*tps, timeout_ms=1000)
            for records in batches.values():
                letters.extend(
                    _parse(r)
                    for r in records
                    if r.offset < ends[TopicPartition(r.topic, r.partition)]
                )
        return [d for d in letters if group is None or d.group == group]
    finally:
        await consumer.stop()


async def replay(settings: InfraSettings, *, group: str, from_offset: int = 0) -> int:
    letters = await read_dead_letters(settings, group=group, from_offset=from_offset)
    producer = make_producer(settings, client_id="scrm-deadletter-replay")
    await producer.start()
    try:
        for letter in letters:
            headers = [*letter.headers, ("dlq_replayed_from", str(letter.offset).encode())]
            await producer.send_and_wait(
                letter.topic, letter.value, key=letter.key, headers=headers
            )
    finally:
        await producer.stop()
    return len(letters)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m servicekit.deadletter")
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="show parked messages with their reasons")
    listing.add_argument("--group")
    again = sub.add_parser("replay", help="republish one group's parked messages")
    again.add_argument("--group", required=True)
    for p in (listing, again):
        p.add_argument("--from-offset", type=int, default=0)
    args = parser.parse_args(argv)
    settings = InfraSettings()
    if args.command == "list":
        letters = asyncio.run(
            read_dead_letters(settings, group=args.group, from_offset=args.from_offset)
        )
        for letter in letters:
            print(json.dumps(letter.summary(), ensure_ascii=False))
        return 0
    count = asyncio.run(replay(settings, group=args.group, from_offset=args.from_offset))
    print(f"replayed {count} message(s) for {args.group}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
