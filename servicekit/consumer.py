"""Idempotent, at-least-once event consumer.

For each message: decode the envelope, upcast old versions, and run the handler for its
type in a transaction that also records the event id, so a redelivered event is seen and
skipped. Transient store or broker faults are retried with backoff (tenacity); anything
else parks the message on the dead-letter topic with the reason. Offsets are committed
only after the batch's effects are durable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from pydantic import ValidationError
from pymongo.errors import ConnectionFailure, DuplicateKeyError, PyMongoError
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from contracts import DEAD_LETTER_TOPIC, Envelope, Event
from contracts.events import upcast_data
from servicekit.context import current_tenant
from servicekit.mongo import Index
from servicekit.telemetry import continued_from, headers_to_dict, tracer
from servicekit.unit_of_work import Tx, UnitOfWork

PROCESSED = "processed_events"
#: Longer than any redelivery or replay window we expect.
PROCESSED_RETENTION = timedelta(days=30)
log = logging.getLogger("servicekit.consumer")

PROCESSED_INDEXES = [
    Index(
        PROCESSED,
        [("handled_at", 1)],
        expire_after_seconds=int(PROCESSED_RETENTION.total_seconds()),
        name="handled_ttl",
    ),
]

Handler = Callable[[Tx, Envelope, Any], Awaitable[None]]


@dataclass(frozen=True)
class Subscription:
    """Which event types a consumer group handles, and how."""

    group_id: str
    handlers: dict[type[Event], Handler]

    def topics(self) -> list[str]:
        return sorted({str(cls.topic) for cls in self.handlers})

    def handler_for(self, type_: str) -> tuple[type[Event], Handler] | None:
        for cls, handler in self.handlers.items():
            if cls.type == type_:
                return cls, handler
        return None


class AlreadyHandled(Exception):
    """The event id is on record: this delivery is a repeat."""


class PoisonMessage(Exception):
    """The message can never be handled as it is; it goes to the dead-letter topic."""


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionFailure):
        return True
    if isinstance(exc, PyMongoError):
        return exc.has_error_label("TransientTransactionError") or exc.has_error_label(
            "RetryableWriteError"
        )
    return isinstance(exc, (TimeoutError, ConnectionError))


class EventConsumer:
    def __init__(
        self,
        subscription: Subscription,
        consumer: AIOKafkaConsumer,
        uow: UnitOfWork,
        dead_letters: AIOKafkaProducer,
        *,
        max_attempts: int = 5,
        batch_timeout_ms: int = 200,
    ) -> None:
        self.subscription = subscription
        self._consumer = consumer
        self._uow = uow
        self._dead_letters = dead_letters
        self._processed = uow.db[PROCESSED]
        self.max_attempts = max_attempts
        self.batch_timeout_ms = batch_timeout_ms
        self.handled = 0
        self.skipped = 0
        self.dead_lettered = 0

    @property
    def assigned(self) -> bool:
        """Whether the group has given this consumer its partitions (joining a group takes
        seconds on some brokers; readiness does not wait for it)."""
        return bool(self._consumer.assignment())

    async def run(self) -> None:
        """Consume until cancelled. A failed batch is not committed: the loop restarts and
        the broker redelivers from the last committed offset."""
        while True:
            try:
                await self.consume_batch()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("consumer batch failed; redelivering", extra=self._log_extra())
                await self._rewind_to_committed()
                await asyncio.sleep(1.0)

    async def consume_batch(self) -> int:
        batches = await self._consumer.getmany(timeout_ms=self.batch_timeout_ms)
        count = 0
        for records in batches.values():
            for record in records:
                await self.handle(record)
                count += 1
        if count:
            await self._consumer.commit()
        return count

    async def _rewind_to_committed(self) -> None:
        for tp in self._consumer.assignment():
            committed = await self._consumer.committed(tp)
            if committed is None:
                await self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, committed)

    async def handle(self, record: ConsumerRecord) -> None:
        carrier = headers_to_dict(record.headers)
        with (
            continued_from(carrier),
            tracer("servicekit.consumer").start_as_current_span(
                f"consume {record.topic}", attributes=self._span_attributes(record)
            ),
        ):
            try:
                await self._handle_with_retries(record)
            except PoisonMessage as exc:
                await self.dead_letter(record, str(exc))
            except Exception as exc:  # retries exhausted or a bug in a handler
                log.exception("event handling failed", extra=self._log_extra())
                await self.dead_letter(record, f"{type(exc).__name__}: {exc}")

    async def _handle_with_retries(self, record: ConsumerRecord) -> None:
        envelope, event, handler = self._decode(record)
        if handler is None:
            return  # a type this group does not handle
        token = current_tenant.set(envelope.tenant)
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(is_transient),
                stop=stop_after_attempt(self.max_attempts),
                wait=wait_exponential_jitter(multiplier=0.05, max=2.0, jitter=0.05),
                reraise=True,
            ):
                with attempt:
                    await self._apply_once(envelope, event, handler)
        finally:
            current_tenant.reset(token)

    def _decode(self, record: ConsumerRecord) -> tuple[Envelope, Event | None, Handler | None]:
        try:
            envelope = Envelope.from_bytes(record.value or b"")
            type_, data = upcast_data(envelope.type, envelope.data)
            match = self.subscription.handler_for(type_)
            if match is None:
                return envelope, None, None
            cls, handler = match
            return envelope, cls.model_validate(data), handler
        except (ValidationError, ValueError, LookupError) as exc:
            raise PoisonMessage(f"undecodable event: {exc}") from exc

    async def _apply_once(self, envelope: Envelope, event: Event, handler: Handler) -> None:
        async def work(tx: Tx) -> None:
            try:
                await self._processed.insert_one(self._receipt(envelope), session=tx.session)
            except DuplicateKeyError:
                raise AlreadyHandled from None
            await handler(tx, envelope, event)

        try:
            await self._uow.run(work)
            self.handled += 1
        except AlreadyHandled:
            self.skipped += 1

    def _receipt(self, envelope: Envelope) -> dict[str, Any]:
        return {
            "_id": f"{self.subscription.group_id}:{envelope.id}",
            "type": envelope.type,
            "tenant": envelope.tenant,
            "handled_at": datetime.now(UTC),
        }

    async def dead_letter(self, record: ConsumerRecord, reason: str) -> None:
        """Park the message with why and where it came from; `python -m servicekit.deadletter`
        replays it."""
        headers = [
            *(record.headers or ()),
            ("dlq_reason", reason[:2000].encode()),
            ("dlq_group", self.subscription.group_id.encode()),
            ("dlq_topic", record.topic.encode()),
            ("dlq_partition", str(record.partition).encode()),
            ("dlq_offset", str(record.offset).encode()),
            ("dlq_failed_at", datetime.now(UTC).isoformat().encode()),
        ]
        await self._dead_letters.send_and_wait(
            DEAD_LETTER_TOPIC, record.value, key=record.key, headers=headers
        )
        self.dead_lettered += 1
        log.warning("event dead-lettered: %s", reason, extra=self._log_extra())

    def _span_attributes(self, record: ConsumerRecord) -> dict[str, Any]:
        return {
            "messaging.system": "kafka",
            "messaging.destination.name": record.topic,
            "messaging.consumer.group.name": self.subscription.group_id,
            "messaging.kafka.offset": record.offset,
        }

    def _log_extra(self) -> dict[str, str]:
        return {"group": self.subscription.group_id}
