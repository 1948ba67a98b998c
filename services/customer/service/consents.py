"""Consent use cases: record a grant or withdrawal with its event, read the picture, check."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from contracts.customer import ConsentGranted, ConsentWithdrawn, CustomerEvent
from servicekit.clock import utcnow
from servicekit.errors import Conflict, NotFound
from servicekit.unit_of_work import Tx, UnitOfWork
from services.customer.domain import consent as rules
from services.customer.domain.consent import (
    Channel,
    Consent,
    ConsentChange,
    ConsentState,
    Purpose,
)
from services.customer.store.consents import ConsentKey, ConsentStore, StaleConsent
from services.customer.store.customers import CustomerStore

#: How often a change lost to a concurrent one is read and decided again before the caller
#: is told to retry. Each retry re-reads, so a loser decides against the winner's state.
MAX_ATTEMPTS = 30


@dataclass(frozen=True)
class Recorded:
    """The consent after a request, and whether the request changed it."""

    consent: Consent
    changed: bool


@dataclass(frozen=True)
class ConsentPicture:
    """Every channel and purpose of a customer; None where nothing was ever recorded."""

    current: dict[ConsentKey, Consent | None]
    history: dict[ConsentKey, list[ConsentChange]] | None


class ConsentService:
    def __init__(self, uow: UnitOfWork, consents: ConsentStore, customers: CustomerStore) -> None:
        self.uow = uow
        self.consents = consents
        self.customers = customers

    async def record(
        self,
        tenant: str,
        customer_id: str,
        channel: Channel,
        purpose: Purpose,
        *,
        granted: bool,
        source: str,
        recorded_by: str,
    ) -> Recorded:
        """Grant or withdraw at once; the change, its history entry and its event commit
        together, and a repeat of the current state changes nothing."""
        await self._require_customer(tenant, customer_id)

        async def work(tx: Tx) -> Recorded:
            request = rules.ConsentRequest(
                tenant=tenant,
                customer_id=customer_id,
                channel=channel,
                purpose=purpose,
                granted=granted,
                source=source,
                recorded_by=recorded_by,
                at=utcnow(),  # taken in each attempt, so a retried change is timed anew
            )
            return await self._apply(tx, request)

        for attempt in range(MAX_ATTEMPTS):
            try:
                return await self.uow.run(work)
            except StaleConsent:
                # Spread the losers out so they do not collide again on the next round.
                await asyncio.sleep(random.uniform(0, 0.005 * (attempt + 1)))
        raise Conflict(
            "the consent kept changing concurrently; retry the request", code="consent_contended"
        )

    async def _apply(self, tx: Tx, request: rules.ConsentRequest) -> Recorded:
        current = await self.consents.current(
            request.tenant, request.customer_id, request.channel, request.purpose, tx.session
        )
        changed = rules.record(current, request)
        if changed is None:
            assert current is not None  # only a recorded state can be repeated
            return Recorded(current, changed=False)
        await self.consents.save(changed, tx.session)
        await tx.emit(_event(changed), tenant=request.tenant)
        return Recorded(changed, changed=True)

    async def picture(
        self, tenant: str, customer_id: str, *, with_history: bool = False
    ) -> ConsentPicture:
        await self._require_customer(tenant, customer_id)
        recorded = await self.consents.of_customer(tenant, customer_id)
        history = await self.consents.history(tenant, customer_id) if with_history else None
        current = {pair: recorded.get(pair) for pair in rules.every_pair()}
        return ConsentPicture(current=current, history=history)

    async def current(
        self, tenant: str, customer_id: str, channel: Channel, purpose: Purpose
    ) -> Consent | None:
        await self._require_customer(tenant, customer_id)
        return await self.consents.current(tenant, customer_id, channel, purpose)

    async def _require_customer(self, tenant: str, customer_id: str) -> None:
        if await self.customers.get(tenant, customer_id) is None:
            raise NotFound(f"no customer {customer_id}", code="customer_not_found")


def _event(consent: Consent) -> CustomerEvent:
    common = {
        "customer_id": consent.customer_id,
        "channel": str(consent.channel),
        "purpose": str(consent.purpose),
        "source": consent.source,
    }
    if consent.state is ConsentState.GRANTED:
        return ConsentGranted(**common, granted_at=consent.changed_at)
    return ConsentWithdrawn(**common, withdrawn_at=consent.changed_at)
