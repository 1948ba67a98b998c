"""Each replica's reader of the coupon topic, for the live alert stream and the evaluator.

Not a consumer group: every replica must see every event (each serves its own SSE
clients), nothing is committed, and a group join costs seconds on start. The reader takes
all partitions by manual assignment, starts at their end (a stream is live; older alerts
are listed by the API), and for each event:
- an alert event goes to this replica's stream hub (its SSE subscribers);
- a claim feeds the batch's recent issuing rate (stock alerts) and wakes the evaluator;
- an approval, an end or a budget threshold wakes the evaluator for that budget;
- a coupon used or given back wakes it for its budget's issuing block.
Events arrive from every replica's outbox, so a change made anywhere reaches here."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from contracts import Envelope, Topic
from contracts.coupon import (
    AlertAcknowledged,
    AlertRaised,
    AlertResolved,
    AlertUpdated,
    BudgetAlertRaised,
    CampaignApproved,
    CampaignEnded,
    CouponClaimed,
    CouponRedeemed,
    CouponRestored,
)
from servicekit.kafka import make_reader
from servicekit.runtime import Runtime
from services.coupon.service.alert_evaluator import AlertSignals, monitoring
from services.coupon.service.alert_hub import AlertHub, StreamEvent

log = logging.getLogger("services.coupon.alert_stream")
ALERT_TYPES = {
    cls.type: cls.type.split(".")[1].removeprefix("alert_")
    for cls in (AlertRaised, AlertUpdated, AlertAcknowledged, AlertResolved)
}
BUDGET_TYPES = {CampaignApproved.type, CampaignEnded.type, BudgetAlertRaised.type}
#: A fetch waits at most this long for data: bounds the stream's latency on a quiet topic.
FETCH_WAIT_MS = 50


class CouponTopicReader:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        found = monitoring(runtime)
        self.hub: AlertHub = found.hub
        self.signals: AlertSignals = found.signals

    async def run(self) -> None:
        """Read until cancelled; a broken connection starts a fresh reader at the end."""
        while True:
            consumer = self._consumer()
            try:
                await consumer.start()
                await self._assign(consumer)
                self.hub.ready.set()
                while True:
                    batches = await consumer.getmany(timeout_ms=1000)
                    for records in batches.values():
                        for record in records:
                            self.dispatch(record)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("coupon topic reader failed; starting again")
                await asyncio.sleep(1.0)
            finally:
                await consumer.stop()

    def _consumer(self) -> AIOKafkaConsumer:
        settings = self.runtime.settings
        return make_reader(
            settings,
            client_id=f"{settings.service_name}-alert-stream",
            fetch_max_wait_ms=FETCH_WAIT_MS,
        )

    async def _assign(self, consumer: AIOKafkaConsumer) -> None:
        topic = str(Topic.COUPON)
        partitions = consumer.partitions_for_topic(topic)
        while not partitions:
            await consumer.topics()  # refreshes the metadata
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                await asyncio.sleep(0.5)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:  # resolve the positions now, so "ready" means positioned
            await consumer.position(tp)

    def dispatch(self, record: ConsumerRecord) -> None:
        try:
            envelope = Envelope.from_bytes(record.value or b"")
        except ValueError:
            return  # not ours to judge: the consumers dead-letter what they cannot read
        data = envelope.data
        name = ALERT_TYPES.get(envelope.type)
        if name is not None:
            self.hub.publish(
                StreamEvent(envelope.id, envelope.tenant, name, str(data.get("kind", "")), data)
            )
        elif envelope.type == CouponClaimed.type:
            at = datetime.fromisoformat(str(data["claimed_at"]))
            self.signals.claimed(envelope.tenant, str(data["batch_id"]), at)
        elif envelope.type in BUDGET_TYPES:
            self.signals.budget(envelope.tenant, str(data["budget_id"]), seen_on_broker=True)
        elif envelope.type == CouponRedeemed.type:
            self.signals.spent(envelope.tenant, str(data["campaign_id"]))
        elif envelope.type == CouponRestored.type:
            self.signals.restored(envelope.tenant)


async def run_reader(runtime: Runtime) -> None:
    await CouponTopicReader(runtime).run()
