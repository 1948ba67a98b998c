"""What a provider adapter is. Adding a provider is one file: a subclass naming itself, the
contact it needs, and `send` (override `send_many` when the provider takes batches)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Literal

from services.reach.domain.channels import Channel
from services.reach.domain.templates import Content

#: Which of the customer's contacts a provider needs (None: it addresses by customer id).
AddressKind = Literal["mobile", "email", "openid", "union_id"] | None


@dataclass(frozen=True)
class Outbound:
    """One message as a provider sees it. `message_id` doubles as the idempotency key: a
    provider that sees it twice must deliver once."""

    tenant: str
    message_id: str
    customer_id: str
    #: A customer channel; `"webhook"` for a staff notice to a webhook contact.
    channel: Channel | str
    content: Content
    address: str | None = None
    #: The values the template was filled with (APIs with registered templates want them).
    variables: dict[str, str] = field(default_factory=dict)
    campaign_id: str | None = None


@dataclass(frozen=True)
class Accepted:
    provider_ref: str
    #: Set when the provider knows at once that the message arrived (the sandbox).
    delivered_at: datetime | None = None


class ProviderFailure(Exception):
    """The provider did not take the message. `transient` faults may succeed on retry."""

    transient: ClassVar[bool] = False

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransientFailure(ProviderFailure):
    transient = True


class PermanentFailure(ProviderFailure):
    transient = False


Outcome = Accepted | ProviderFailure


class Provider:
    name: ClassVar[str]
    address_kind: ClassVar[AddressKind] = None
    #: How many sends of one batch run at once.
    concurrency: ClassVar[int] = 16

    async def send(self, message: Outbound) -> Accepted:
        raise NotImplementedError

    async def send_many(self, messages: list[Outbound]) -> list[Outcome]:
        """Each message's outcome, in order; a failure of one never fails the others."""
        gate = asyncio.Semaphore(self.concurrency)

        async def one(message: Outbound) -> Outcome:
            async with gate:
                try:
                    return await self.send(message)
                except ProviderFailure as failure:
                    return failure

        return list(await asyncio.gather(*(one(m) for m in messages)))

    async def close(self) -> None:
        """Release what the provider holds (an HTTP client)."""
