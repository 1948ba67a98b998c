"""The idempotent consumer against the real broker and store: transient faults retried,
poison messages parked on the dead-letter topic with the reason and replayed by command,
and a crash before the offset commit redelivers without applying twice."""

from __future__ import annotations

from typing import ClassVar

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pymongo.errors import AutoReconnect

from contracts import Envelope, Event
from servicekit.consumer import EventConsumer, Subscription
from servicekit.deadletter import read_dead_letters, replay
from servicekit.runtime import Runtime
from servicekit.settings import ServiceSettings, service_config
from servicekit.unit_of_work import Tx
from tests.support.settings import settings_for
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
TOPIC = "scrm.test.probes"


class ProbeSettings(ServiceSettings):
    service_name: ClassVar[str] = "probe"
    model_config = service_config("probe")


class ProbeSent(Event):
    """Sent by these tests only."""

    type: ClassVar[str] = "probe.sent.v1"
    topic: ClassVar[str] = TOPIC  # type: ignore[assignment]
    subject_field: ClassVar[str] = "probe_id"

    probe_id: str
    behaviour: str = "ok"


class Faults:
    """How often each probe's handler still has to fail, and whether a fix is deployed."""

    def __init__(self) -> None:
        self.transient_left: dict[str, int] = {}
        self.fixed = False


FAULTS = Faults()


async def apply_probe(tx: Tx, envelope: Envelope, event: ProbeSent) -> None:
    if event.behaviour == "transient" and FAULTS.transient_left.get(event.probe_id, 2) > 0:
        FAULTS.transient_left[event.probe_id] = FAULTS.transient_left.get(event.probe_id, 2) - 1
        raise AutoReconnect("store briefly unreachable")
    if event.behaviour == "broken" and not FAULTS.fixed:
        raise ValueError("this handler cannot apply the probe yet")
    await tx.db["probes"].update_one(
        {"_id": event.probe_id}, {"$inc": {"applied": 1}}, upsert=True, session=tx.session
    )


def subscription() -> Subscription:
    return Subscription(group_id="probe.appliers", handlers={ProbeSent: apply_probe})


@pytest.fixture
async def probe_runtime(infra, unique: str):
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap_servers)
    await admin.start()
    if TOPIC not in await admin.list_topics():
        await admin.create_topics([NewTopic(TOPIC, num_partitions=2, replication_factor=1)])
    await admin.close()
    runtime = await Runtime.start(
        settings_for(ProbeSettings, infra, unique), indexes=[], subscriptions=[]
    )
    yield runtime
    await runtime.stop()


async def publish(runtime: Runtime, *messages: bytes, key: bytes = b"probe") -> None:
    for value in messages:
        await runtime.producer.send_and_wait(TOPIC, value, key=key)


def probe(probe_id: str, behaviour: str = "ok", tenant: str = "probe-tenant") -> bytes:
    event = ProbeSent(probe_id=probe_id, behaviour=behaviour)
    return runtime_envelope(event, tenant).to_bytes()


def runtime_envelope(event: ProbeSent, tenant: str) -> Envelope:
    return Envelope(
        type=event.type,
        source="/tests",
        subject=event.subject(),
        tenant=tenant,
        data=event.model_dump(mode="json"),
    )


async def applied(runtime: Runtime, probe_id: str) -> int:
    doc = await runtime.db["probes"].find_one({"_id": probe_id})
    return doc["applied"] if doc else 0


async def test_transient_faults_are_retried_and_duplicates_skipped(
    probe_runtime: Runtime, unique: str
) -> None:
    consumer = await probe_runtime.subscribe(subscription())
    flaky, steady = f"flaky-{unique}", f"steady-{unique}"
    await publish(probe_runtime, probe(flaky, "transient"), probe(steady), probe(steady))
    # the second `steady` has another event id: a new event, applied again.
    await eventually(lambda: applied(probe_runtime, steady), until=lambda n: n == 2)
    await eventually(lambda: applied(probe_runtime, flaky), until=lambda n: n == 1)
    assert FAULTS.transient_left[flaky] == 0  # failed twice, then succeeded
    assert consumer.dead_lettered == 0

    same = probe(f"same-{unique}")
    await publish(probe_runtime, same, same, same)  # one event delivered three times
    await eventually(lambda: consumer.skipped, until=lambda n: n >= 2)
    assert await applied(probe_runtime, f"same-{unique}") == 1


async def test_poison_messages_are_parked_with_the_reason_and_replayed(
    probe_runtime: Runtime, unique: str
) -> None:
    consumer = await probe_runtime.subscribe(subscription())
    group = consumer.subscription.group_id
    broken = f"broken-{unique}"
    await publish(probe_runtime, b"{not json", probe(broken, "broken"), probe(f"after-{unique}"))
    # The stream goes on past the poison: the next probe is applied.
    await eventually(lambda: applied(probe_runtime, f"after-{unique}"), until=lambda n: n == 1)
    await eventually(lambda: consumer.dead_lettered, until=lambda n: n == 2)

    letters = await read_dead_letters(probe_runtime.settings, group=group)
    reasons = sorted(letter.reason for letter in letters)
    assert len(letters) == 2
    assert reasons[0].startswith("ValueError: this handler cannot apply the probe yet")
    assert reasons[1].startswith("undecodable event")
    assert all(letter.topic == TOPIC for letter in letters)
    assert await applied(probe_runtime, broken) == 0

    FAULTS.fixed = True  # the fix is deployed; replay what was parked
    try:
        assert await replay(probe_runtime.settings, group=group) == 2
        await eventually(lambda: applied(probe_runtime, broken), until=lambda n: n == 1)
        # the undecodable one is parked again, with its reason
        await eventually(lambda: consumer.dead_lettered, until=lambda n: n == 3)
    finally:
        FAULTS.fixed = False


async def test_a_crash_before_the_offset_commit_redelivers_without_double_apply(
    probe_runtime: Runtime, unique: str
) -> None:
    sub = subscription()
    probe_id = f"crash-{unique}"
    await publish(probe_runtime, probe(probe_id))

    # A first consumer applies the event, then dies before committing its offset. (It
    # reads by assignment rather than as a group member: tansu takes ~18 s to rebalance
    # after a member leaves, and the group's committed offset is what matters here.)
    doomed_kafka = AIOKafkaConsumer(
        bootstrap_servers=probe_runtime.settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
    )
    await doomed_kafka.start()
    partitions = [TopicPartition(TOPIC, p) for p in doomed_kafka.partitions_for_topic(TOPIC)]
    doomed_kafka.assign(partitions)
    await doomed_kafka.seek_to_beginning(*partitions)
    same_group = Subscription(
        group_id=probe_runtime.settings.kafka_group_prefix + sub.group_id, handlers=sub.handlers
    )
    doomed = EventConsumer(same_group, doomed_kafka, probe_runtime.uow, probe_runtime.producer)

    async def ours() -> list:
        batches = await doomed_kafka.getmany(timeout_ms=200)
        return [r for rs in batches.values() for r in rs if probe_id.encode() in (r.value or b"")]

    for record in await eventually(ours):
        await doomed.handle(record)
    await doomed_kafka.stop()  # no commit
    assert await applied(probe_runtime, probe_id) == 1

    # Its successor gets the event again and recognises it.
    successor = await probe_runtime.subscribe(sub)
    await eventually(lambda: successor.skipped, until=lambda n: n >= 1, within=60)
    assert await applied(probe_runtime, probe_id) == 1
