"""One place where a use case's writes and its events commit together."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from pymongo import AsyncMongoClient, ReadPreference
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from contracts import Envelope, Event
from servicekit.context import current_tenant
from servicekit.mongo import Document
from servicekit.outbox import Outbox

T = TypeVar("T")


@dataclass
class Tx:
    """What a use case sees of an open transaction: the session for its writes, and
    `emit` for the events that follow from them."""

    session: AsyncClientSession
    db: AsyncDatabase[Document]
    outbox: Outbox
    #: Events emitted so far; written to the outbox as one entry when the work is done.
    pending: list[tuple[Envelope, Event]] = field(default_factory=list)

    async def emit(self, *events: Event, tenant: str | None = None) -> list[Envelope]:
        tenant = tenant or current_tenant.get()
        if tenant is None:
            raise RuntimeError("emit needs a tenant: none is set for this request or event")
        envelopes = [self.outbox.envelope(tenant, e) for e in events]
        self.pending.extend(zip(envelopes, events, strict=True))
        return envelopes

    @property
    def emitted(self) -> list[Envelope]:
        return [envelope for envelope, _ in self.pending]


class UnitOfWork:
    def __init__(
        self, client: AsyncMongoClient[Document], db: AsyncDatabase[Document], outbox: Outbox
    ) -> None:
        self.client = client
        self.db = db
        self.outbox = outbox

    async def run(self, work: Callable[[Tx], Awaitable[T]]) -> T:
        """Run `work` in a transaction, retried as a whole on transient errors (PyMongo's
        `with_transaction`); the relay is woken once it commits."""
        emitted = False

        async def attempt(session: AsyncClientSession) -> T:
            nonlocal emitted
            tx = Tx(session=session, db=self.db, outbox=self.outbox)
            result = await work(tx)
            await self.outbox.add(session, tx.pending)
            emitted = bool(tx.pending)
            return result

        async with self.client.start_session() as session:
            result = await session.with_transaction(
                attempt,
                read_concern=ReadConcern("majority"),
                write_concern=WriteConcern("majority"),
                read_preference=ReadPreference.PRIMARY,
            )
        if emitted:
            self.outbox.committed()
        return result
