"""Consents: the current state, one document per (tenant, customer, channel, purpose), so a
customer's whole picture is one query; and the history, append-only, one document per change."""

from __future__ import annotations

from collections import defaultdict

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from servicekit.mongo import Document, Index
from services.customer.domain.consent import Channel, Consent, ConsentChange, Purpose

CONSENTS = "consents"
CONSENT_HISTORY = "consent_history"
INDEXES = [
    Index(CONSENTS, [("tenant", 1), ("customer_id", 1)], name="by_customer"),
    # One entry per version: two writers can never both append the same step.
    Index(
        CONSENT_HISTORY,
        [("tenant", 1), ("customer_id", 1), ("channel", 1), ("purpose", 1), ("version", 1)],
        unique=True,
        name="one_entry_per_version",
    ),
]

ConsentKey = tuple[Channel, Purpose]


class StaleConsent(Exception):
    """Another writer changed the consent after it was read; read again and decide again."""


def _id(tenant: str, customer_id: str, channel: Channel, purpose: Purpose) -> str:
    return f"{tenant}/{customer_id}/{channel}/{purpose}"


def _to_doc(consent: Consent) -> Document:
    doc = consent.model_dump(mode="python")
    doc["_id"] = _id(consent.tenant, consent.customer_id, consent.channel, consent.purpose)
    return doc


def _from_doc(doc: Document) -> Consent:
    return Consent.model_validate({k: v for k, v in doc.items() if k != "_id"})


def _history_doc(consent: Consent) -> Document:
    keys = ("tenant", "customer_id", "channel", "purpose")
    return {**consent.model_dump(include=set(keys)), **consent.last_change().model_dump()}


class ConsentStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._consents = db[CONSENTS]
        self._history = db[CONSENT_HISTORY]

    async def current(
        self,
        tenant: str,
        customer_id: str,
        channel: Channel,
        purpose: Purpose,
        session: AsyncClientSession | None = None,
    ) -> Consent | None:
        key = _id(tenant, customer_id, channel, purpose)
        doc = await self._consents.find_one({"_id": key, "tenant": tenant}, session=session)
        return _from_doc(doc) if doc else None

    async def of_customer(self, tenant: str, customer_id: str) -> dict[ConsentKey, Consent]:
        """Every recorded consent of a customer, in one query."""
        cursor = self._consents.find({"tenant": tenant, "customer_id": customer_id})
        consents = [_from_doc(doc) for doc in await cursor.to_list()]
        return {(c.channel, c.purpose): c for c in consents}

    async def history(self, tenant: str, customer_id: str) -> dict[ConsentKey, list[ConsentChange]]:
        """Every change of every consent of a customer, oldest first."""
        cursor = self._history.find({"tenant": tenant, "customer_id": customer_id}).sort(
            [("channel", 1), ("purpose", 1), ("version", 1)]
        )
        changes: dict[ConsentKey, list[ConsentChange]] = defaultdict(list)
        for doc in await cursor.to_list():
            key = (Channel(doc["channel"]), Purpose(doc["purpose"]))
            changes[key].append(ConsentChange.model_validate(doc))
        return dict(changes)

    async def save(self, consent: Consent, session: AsyncClientSession) -> None:
        """Write `consent` over the version before it and append its history entry; raise
        `StaleConsent` when another writer got there first."""
        try:
            if consent.version == 1:
                await self._consents.insert_one(_to_doc(consent), session=session)
            else:
                await self._replace(consent, session)
            await self._history.insert_one(_history_doc(consent), session=session)
        except DuplicateKeyError:
            raise StaleConsent from None

    async def _replace(self, consent: Consent, session: AsyncClientSession) -> None:
        doc = _to_doc(consent)
        read = {"_id": doc["_id"], "tenant": consent.tenant, "version": consent.version - 1}
        result = await self._consents.replace_one(read, doc, session=session)
        if result.matched_count == 0:
            raise StaleConsent
