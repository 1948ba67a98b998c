"""The live alert stream's fan-out, in process: the replica's broker reader publishes every
alert event it reads, each open stream of that tenant gets it. A few hundred recent events
per tenant are kept so a client that reconnects with `Last-Event-ID` misses nothing that
happened while it was away (if it was away longer, it lists `/alerts` again)."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass, field

#: A stream whose reader falls this far behind is dropped (it reconnects and resumes).
QUEUE_SIZE = 1000


@dataclass(frozen=True)
class StreamEvent:
    id: str
    tenant: str
    #: raised, updated, acknowledged, resolved.
    name: str
    kind: str
    data: dict

    def encode(self) -> bytes:
        payload = json.dumps(self.data, separators=(",", ":"))
        return f"id: {self.id}\nevent: alert_{self.name}\ndata: {payload}\n\n".encode()


@dataclass(eq=False)
class Subscriber:
    tenant: str
    kinds: frozenset[str]
    queue: asyncio.Queue[StreamEvent | None] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_SIZE)
    )

    def wants(self, event: StreamEvent) -> bool:
        return not self.kinds or event.kind in self.kinds


class AlertHub:
    def __init__(self, history: int) -> None:
        self.history = history
        self._recent: dict[str, deque[StreamEvent]] = {}
        self._subscribers: dict[str, set[Subscriber]] = {}
        #: Set once the broker reader is positioned: a stream opened after it misses nothing.
        self.ready = asyncio.Event()

    def publish(self, event: StreamEvent) -> None:
        recent = self._recent.setdefault(event.tenant, deque(maxlen=self.history))
        recent.append(event)
        for sub in list(self._subscribers.get(event.tenant, ())):
            if not sub.wants(event):
                continue
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                self.unsubscribe(sub)
                sub.queue.get_nowait()
                sub.queue.put_nowait(None)  # tells the stream to end: it resumes by id

    def subscribe(
        self, tenant: str, kinds: frozenset[str], last_event_id: str | None
    ) -> tuple[Subscriber, list[StreamEvent]]:
        """A new subscriber, and what it missed after `last_event_id` (when still kept)."""
        sub = Subscriber(tenant, kinds)
        self._subscribers.setdefault(tenant, set()).add(sub)
        return sub, [e for e in self.missed(tenant, last_event_id) if sub.wants(e)]

    def missed(self, tenant: str, last_event_id: str | None) -> list[StreamEvent]:
        if not last_event_id:
            return []
        recent = list(self._recent.get(tenant, ()))
        ids = [e.id for e in recent]
        if last_event_id not in ids:
            return []
        return recent[ids.index(last_event_id) + 1 :]

    def unsubscribe(self, sub: Subscriber) -> None:
        subs = self._subscribers.get(sub.tenant)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subscribers[sub.tenant]

    def subscribers(self, tenant: str) -> int:
        return len(self._subscribers.get(tenant, ()))
