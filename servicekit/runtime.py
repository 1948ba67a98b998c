"""The clients a service holds for its lifetime, built once at start-up and handed in."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Annotated, Any

from aiokafka import AIOKafkaProducer
from fastapi import Depends, Request
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from tenacity import AsyncRetrying, stop_after_delay, wait_exponential

from contracts import DEAD_LETTER_TOPIC, Topic
from servicekit.consumer import PROCESSED_INDEXES, EventConsumer, Subscription
from servicekit.idempotency import IDEMPOTENCY_INDEXES
from servicekit.kafka import ensure_topics, make_consumer, make_producer
from servicekit.mongo import Document, Index, ensure_indexes, make_mongo_client
from servicekit.outbox import OUTBOX_INDEXES, Outbox, OutboxRelay
from servicekit.settings import ServiceSettings
from servicekit.unit_of_work import UnitOfWork

log = logging.getLogger("servicekit.runtime")


@dataclass(frozen=True)
class Worker:
    """A background loop a service runs beside its HTTP routes (a scheduler, a sweep, a
    job runner). `run` must loop until cancelled and survive its own faults."""

    name: str
    run: Callable[[Runtime], Coroutine[Any, Any, None]]


KIT_INDEXES = [*OUTBOX_INDEXES, *PROCESSED_INDEXES, *IDEMPOTENCY_INDEXES]


@dataclass
class Runtime:
    settings: ServiceSettings
    client: AsyncMongoClient[Document]
    db: AsyncDatabase[Document]
    producer: AIOKafkaProducer
    outbox: Outbox
    uow: UnitOfWork
    relay: OutboxRelay
    consumers: list[EventConsumer] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    #: What a service builds once from its settings and hands to its routes (e.g. a key vault).
    state: dict[str, Any] = field(default_factory=dict)

    @classmethod
    async def start(
        cls,
        settings: ServiceSettings,
        *,
        indexes: list[Index],
        subscriptions: list[Subscription],
        workers: list[Worker] | None = None,
        state: dict[str, Any] | None = None,
        run_relay: bool = True,
    ) -> Runtime:
        name = settings.service_name
        client = make_mongo_client(settings.mongodb_uri, app_name=name)
        db = client[settings.mongodb_database]
        await ensure_indexes(db, [*KIT_INDEXES, *indexes])
        await ensure_topics(
            settings,
            [*(str(t) for t in Topic), DEAD_LETTER_TOPIC],
            partitions=settings.kafka_topic_partitions,
            replication=settings.kafka_replication_factor,
        )
        producer = make_producer(settings, client_id=f"{name}-producer")
        await _start_with_retries(producer)
        outbox = Outbox(db, source=f"/services/{name}")
        uow = UnitOfWork(client, db, outbox)
        relay = OutboxRelay(
            db,
            producer,
            outbox,
            owner=f"{name}@{socket.gethostname()}:{id(outbox):x}",
            lease_seconds=settings.outbox_lease_seconds,
            batch_size=settings.outbox_batch_size,
        )
        runtime = cls(settings, client, db, producer, outbox, uow, relay, state=dict(state or {}))
        if run_relay:
            runtime.spawn(relay.run(), "outbox-relay")
        # Side by side: a group consumer's start waits on the broker's coordinator (5 s each
        # on the embedded broker), and a service has several.
        consumers = await asyncio.gather(*(runtime.subscribe(sub) for sub in subscriptions))
        runtime.consumers[:] = consumers  # in the order of `subscriptions`
        for worker in workers or []:
            runtime.spawn(worker.run(runtime), f"worker:{worker.name}")
        return runtime

    async def subscribe(self, subscription: Subscription) -> EventConsumer:
        group_id = self.settings.kafka_group_prefix + subscription.group_id
        subscription = dataclasses.replace(subscription, group_id=group_id)
        kafka = make_consumer(
            self.settings,
            *subscription.topics(),
            group_id=group_id,
            client_id=f"{self.settings.service_name}-{subscription.group_id}",
        )
        await _start_with_retries(kafka)
        consumer = EventConsumer(subscription, kafka, self.uow, self.producer)
        consumer.kafka = kafka  # type: ignore[attr-defined]
        self.consumers.append(consumer)
        self.spawn(consumer.run(), f"consumer:{subscription.group_id}")
        return consumer

    def spawn(self, coro: Any, name: str) -> None:
        self.tasks.append(asyncio.create_task(coro, name=name))

    async def stop(self) -> None:
        """Stop the workers, consumers, producer and client, each within `STOP_GRACE`: a
        worker deaf to cancellation or a broker slow to let a group member go must not keep
        the process from stopping (the work is redelivered or its lease lapses)."""
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            await _within_grace(task, f"worker {task.get_name()}")
        await self.relay.release_lease()
        for consumer in self.consumers:
            await _within_grace(consumer.kafka.stop(), "consumer")  # type: ignore[attr-defined]
        await _within_grace(self.producer.stop(), "producer")
        await self.client.close()

    async def readiness(self) -> dict[str, Any]:
        """Each dependency's state; `ready` only when the store and broker both answer."""
        checks = {
            "store": await _check(self.db.command("ping")),
            "broker": await _check(self.producer.client.fetch_all_metadata()),
        }
        tasks = {t.get_name(): "running" if not t.done() else "stopped" for t in self.tasks}
        ready = all(c == "ok" for c in checks.values()) and all(
            s == "running" for s in tasks.values()
        )
        return {"ready": ready, "checks": checks, "workers": tasks}


#: How long stopping waits for each part.
STOP_GRACE = 10.0


async def _within_grace(awaitable: Any, what: str) -> None:
    try:
        async with asyncio.timeout(STOP_GRACE):
            await awaitable
    except TimeoutError:
        log.warning("%s did not stop within %.0f s; left behind", what, STOP_GRACE)
    except (asyncio.CancelledError, Exception):
        pass


async def _check(awaitable: Any) -> str:
    try:
        async with asyncio.timeout(3.0):
            await awaitable
    except Exception as exc:
        return f"failing: {type(exc).__name__}"
    return "ok"


async def _start_with_retries(client: Any) -> None:
    """A broker that is still starting is waited for, up to a minute."""
    async for attempt in AsyncRetrying(
        stop=stop_after_delay(60), wait=wait_exponential(max=5), reraise=True
    ):
        with attempt:
            await client.start()


def runtime_of(request: Request) -> Runtime:
    """The app's runtime. A dependency built from the runtime can take the request and call
    this rather than depend on `RuntimeDep`: FastAPI solves every dependency of a route on
    every request, a nested one included, at about 10 us of CPU each."""
    return request.app.state.runtime


async def _runtime(request: Request) -> Runtime:
    # async although it does no I/O: FastAPI runs a plain `def` dependency in a worker
    # thread, a hop every request would pay.
    return runtime_of(request)


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
