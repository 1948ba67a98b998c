"""An event written by the customer service through its outbox reaches the tagging
service's consumer, even when the relay dies between write and publish and between
publish and marking the entry sent: nothing is lost, nothing is applied twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from servicekit.outbox import OutboxRelay
from servicekit.runtime import Runtime
from services.customer.domain.customer import SourceChannel
from services.customer.service.profiles import CustomerService
from services.customer.settings import CustomerSettings
from services.customer.store import CustomerStore
from services.customer.store import indexes as customer_indexes
from services.customer.store.custom_fields import CustomFieldStore
from services.tagging.events import SUBSCRIPTIONS as TAGGING_SUBSCRIPTIONS
from services.tagging.settings import TaggingSettings
from services.tagging.store import INDEXES as TAGGING_INDEXES
from services.tagging.store import ProfileStore
from tests.support.settings import settings_for
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


class RelayKilled(Exception):
    pass


class RelayKilledAfterPublish(OutboxRelay):
    """A relay whose process dies after Kafka acknowledged the batch, before it could
    mark the entries sent."""

    async def mark_sent(self, ids: list) -> None:
        raise RelayKilled


async def test_outbox_survives_relay_crashes_without_loss_or_double_apply(
    infra, unique: str
) -> None:
    tenant = f"t{unique}"
    customer_rt = await Runtime.start(
        settings_for(CustomerSettings, infra, unique),
        indexes=customer_indexes(CustomerSettings()),
        subscriptions=[],
        run_relay=False,  # the relay is dead while the customers are written
    )
    tagging_rt = await Runtime.start(
        settings_for(TaggingSettings, infra, unique),
        indexes=TAGGING_INDEXES,
        subscriptions=TAGGING_SUBSCRIPTIONS,
    )
    try:
        customers = CustomerService(
            customer_rt.uow, CustomerStore(customer_rt.db), CustomFieldStore(customer_rt.db)
        )
        registered = await asyncio.gather(
            *(
                customers.register(
                    tenant, display_name=f"Shopper {i}", source_channel=SourceChannel.STORE
                )
                for i in range(6)
            )
        )
        # Written, not published: the state and its events committed together.
        assert await customer_rt.relay.pending_count() == 6

        crashing = RelayKilledAfterPublish(
            customer_rt.db, customer_rt.producer, customer_rt.outbox, owner="doomed"
        )
        assert await crashing.hold_lease()
        with pytest.raises(RelayKilled):
            await crashing.publish_pending()
        # Kafka has every event once, but the outbox still says pending.
        assert await customer_rt.relay.pending_count() == 6

        # A new relay takes over once the dead one's lease expires, and publishes again.
        await customer_rt.db["outbox_leases"].update_one(
            {"_id": "outbox"}, {"$set": {"until": datetime.now(UTC) - timedelta(seconds=1)}}
        )
        customer_rt.spawn(customer_rt.relay.run(), "outbox-relay")
        await eventually(customer_rt.relay.pending_count, until=lambda n: n == 0)

        consumer = tagging_rt.consumers[0]
        await eventually(lambda: consumer.skipped, until=lambda n: n >= 6, within=60)
        profiles = ProfileStore(tagging_rt.db)
        portrait = await profiles.portrait(tenant)
        assert portrait.customers == 6  # each delivered twice, applied once
        assert portrait.by_source_channel == {"store": 6}
        for customer in registered:
            profile = await profiles.profile(tenant, customer.id)
            assert profile is not None and profile.display_name == customer.display_name
        assert consumer.dead_lettered == 0
    finally:
        await tagging_rt.stop()
        await customer_rt.stop()


async def test_one_relay_holds_the_lease_until_it_lapses(infra, unique: str) -> None:
    runtime = await Runtime.start(
        settings_for(CustomerSettings, infra, unique),
        indexes=customer_indexes(CustomerSettings()),
        subscriptions=[],
        run_relay=False,
    )
    try:
        first, second = (
            OutboxRelay(runtime.db, runtime.producer, runtime.outbox, owner=name, lease_seconds=30)
            for name in ("replica-a", "replica-b")
        )
        assert await first.hold_lease()
        assert not await second.hold_lease()  # a live owner keeps it
        assert await first.hold_lease()  # and may extend it

        await first.release_lease()  # a clean shutdown hands it over at once
        assert await second.hold_lease()
        assert not await first.hold_lease()

        await runtime.db["outbox_leases"].update_one(
            {"_id": "outbox"}, {"$set": {"until": datetime.now(UTC) - timedelta(seconds=1)}}
        )
        assert await first.hold_lease()  # a lapsed lease (a dead owner) is taken over
    finally:
        await runtime.stop()
