"""A live reader of a server-sent event stream for tests: opens the stream with httpx,
records each event with the moment it arrived, and lets a test wait for one."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.waiting import eventually


@dataclass
class Received:
    id: str | None
    event: str
    data: dict[str, Any]
    #: time.perf_counter() when the event's blank line arrived.
    at: float


@dataclass
class LiveStream:
    events: list[Received] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    ended: bool = False

    async def next_matching(
        self, match: Callable[[Received], bool], *, within: float = 10.0
    ) -> Received:
        found = await eventually(
            lambda: [e for e in self.events if match(e)], until=bool, within=within
        )
        return found[0]

    def of(self, event: str, **data: Any) -> list[Received]:
        return [
            e
            for e in self.events
            if e.event == event and all(e.data.get(k) == v for k, v in data.items())
        ]


async def _read(response: httpx.Response, stream: LiveStream) -> None:
    fields: dict[str, str] = {}
    data: list[str] = []
    async for line in response.aiter_lines():
        if line.startswith(":"):
            stream.comments.append(line[1:].strip())
            stream.connected.set()
        elif line == "":
            if data:
                stream.events.append(
                    Received(
                        fields.get("id"),
                        fields.get("event", "message"),
                        json.loads("\n".join(data)),
                        time.perf_counter(),
                    )
                )
            fields, data = {}, []
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            else:
                fields[name] = value
    stream.ended = True


@contextlib.asynccontextmanager
async def live_stream(
    client: httpx.AsyncClient, path: str, headers: dict[str, str] | None = None
) -> AsyncIterator[LiveStream]:
    """The stream at `path`, read in the background while the block runs."""
    stream = LiveStream()
    timeout = httpx.Timeout(10.0, read=None)
    sent = {"Accept": "text/event-stream", **(headers or {})}
    async with client.stream("GET", path, headers=sent, timeout=timeout) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = asyncio.create_task(_read(response, stream))
        try:
            await asyncio.wait_for(stream.connected.wait(), 10.0)
            yield stream
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await reader
