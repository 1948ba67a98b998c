"""Transactional outbox and its relay.

A use case writes its state change and the events that follow in one MongoDB transaction
(`Outbox.add` inside `UnitOfWork.run`). The relay publishes pending entries to Kafka in
order (acks=all) and only then marks them sent: a crash between publish and mark sends an
entry again, never loses one, and consumers drop the repeat by event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaProducer
from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from contracts import Envelope, Event
from servicekit.mongo import Document, Index
from servicekit.telemetry import current_trace_headers, kafka_headers

OUTBOX = "outbox"
LEASES = "outbox_leases"
SENT_RETENTION = timedelta(days=7)
log = logging.getLogger("servicekit.outbox")

OUTBOX_INDEXES = [
    Index(OUTBOX, [("sent_at", 1), ("created_at", 1), ("_id", 1)], name="pending_in_order"),
    Index(
        OUTBOX,
        [("sent_at", 1)],
        expire_after_seconds=int(SENT_RETENTION.total_seconds()),
        name="sent_ttl",
    ),
]


def now() -> datetime:
    return datetime.now(UTC)


class Outbox:
    """Records events in the caller's transaction and wakes the relay after commit."""

    def __init__(self, db: AsyncDatabase[Document], *, source: str) -> None:
        self._entries = db[OUTBOX]
        self.source = source
        self.wakeup = asyncio.Event()

    def envelope(self, tenant: str, event: Event) -> Envelope:
        trace = current_trace_headers()
        return Envelope(
            type=event.type,
            source=self.source,
            subject=event.subject(),
            tenant=tenant,
            traceparent=trace.get("traceparent"),
            tracestate=trace.get("tracestate"),
            data=event.model_dump(mode="json"),
        )

    async def add(
        self, session: AsyncClientSession, messages: Sequence[tuple[Envelope, Event]]
    ) -> None:
        """One outbox entry per transaction, holding all its events in order: a batch of
        500 behaviour events costs one insert and one "sent" mark, not 500 of each."""
        if messages:
            entry = {
                "_id": ObjectId(),
                "created_at": now(),
                "sent_at": None,
                "events": [self._message(env, event) for env, event in messages],
            }
            await self._entries.insert_one(entry, session=session)

    @staticmethod
    def _message(envelope: Envelope, event: Event) -> Document:
        trace = {"traceparent": envelope.traceparent, "tracestate": envelope.tracestate}
        return {
            "event_id": envelope.id,
            "type": envelope.type,
            "tenant": envelope.tenant,
            "topic": str(event.topic),
            "key": envelope.subject,
            "value": envelope.to_bytes(),
            "headers": {k: v for k, v in trace.items() if v},
        }

    def committed(self) -> None:
        """Called after a transaction that added entries commits."""
        self.wakeup.set()


class OutboxRelay:
    """Publishes pending outbox entries. Several replicas may run one; a lease lets one
    publish at a time, so entries leave in the order they were written."""

    def __init__(
        self,
        db: AsyncDatabase[Document],
        producer: AIOKafkaProducer,
        outbox: Outbox,
        *,
        owner: str,
        lease_seconds: float = 10.0,
        batch_size: int = 500,
        idle_poll_seconds: float = 0.2,
    ) -> None:
        self._entries = db[OUTBOX]
        self._leases = db[LEASES]
        self._producer = producer
        self._outbox = outbox
        self.owner = owner
        self.lease = timedelta(seconds=lease_seconds)
        self.batch_size = batch_size
        self.idle_poll_seconds = idle_poll_seconds
        self.published = 0

    async def run(self) -> None:
        """Relay until cancelled; faults are logged and retried, never fatal."""
        backoff = 0.1
        while True:
            try:
                # Clear before reading, so a commit during this round wakes the next one.
                self._outbox.wakeup.clear()
                sent = await self.publish_pending() if await self.hold_lease() else 0
                backoff = 0.1
                if sent < self.batch_size:
                    await self._wait_for_work()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay round failed; retrying", extra={"owner": self.owner})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _wait_for_work(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._outbox.wakeup.wait(), self.idle_poll_seconds)

    async def hold_lease(self) -> bool:
        """Take or extend the lease; False while another live relay holds it."""
        at = now()
        try:
            await self._leases.find_one_and_update(
                {"_id": OUTBOX, "$or": [{"owner": self.owner}, {"until": {"$lt": at}}]},
                {"$set": {"owner": self.owner, "until": at + self.lease}},
                upsert=True,
            )
        except DuplicateKeyError:
            return False
        return True

    async def release_lease(self) -> None:
        try:
            await self._leases.delete_one({"_id": OUTBOX, "owner": self.owner})
        except PyMongoError:
            log.warning("could not release the outbox lease; it will expire")

    async def publish_pending(self) -> int:
        """Publish one batch of pending entries in order; return how many entries (each
        one transaction's events) were sent."""
        cursor = self._entries.find({"sent_at": None}).sort([("created_at", 1), ("_id", 1)])
        entries = await cursor.limit(self.batch_size).to_list()
        if not entries:
            return 0
        sent = await self._send(entries)
        if sent:
            await self.mark_sent([e["_id"] for e in sent])
            self.published += sum(len(e["events"]) for e in sent)
        return len(sent)

    async def _send(self, entries: list[Document]) -> list[Document]:
        """Send all, then wait for the acks; stop at the first entry with a failure, so
        what is marked sent is a prefix and order holds (the rest is sent again)."""
        futures = [
            [await self._producer.send(**self._kafka_message(m)) for m in entry["events"]]
            for entry in entries
        ]
        sent: list[Document] = []
        for entry, acks in zip(entries, futures, strict=True):
            try:
                for ack in acks:
                    await ack
            except Exception:
                log.exception("publish failed", extra={"outbox_entry": str(entry["_id"])})
                break
            sent.append(entry)
        return sent

    @staticmethod
    def _kafka_message(message: Document) -> dict:
        return {
            "topic": message["topic"],
            "value": message["value"],
            "key": message["key"].encode(),
            "headers": [
                ("ce_id", message["event_id"].encode()),
                ("ce_type", message["type"].encode()),
                ("ce_tenant", message["tenant"].encode()),
                *kafka_headers(message.get("headers") or {}),
            ],
        }

    async def mark_sent(self, ids: list[ObjectId]) -> None:
        await self._entries.update_many({"_id": {"$in": ids}}, {"$set": {"sent_at": now()}})

    async def pending_count(self) -> int:
        return await self._entries.count_documents({"sent_at": None})


async def outbox_events(
    db: AsyncDatabase[Document], *, tenant: str | None = None, type: str | None = None
) -> list[Document]:
    """Every event recorded in the outbox (sent or not), optionally of one tenant and type:
    what a use case committed, for tests and operators."""
    query: Document = {}
    if tenant is not None:
        query["events.tenant"] = tenant
    events = [m async for entry in db[OUTBOX].find(query).sort("_id", 1) for m in entry["events"]]
    return [
        m
        for m in events
        if (tenant is None or m["tenant"] == tenant) and (type is None or m["type"] == type)
    ]
