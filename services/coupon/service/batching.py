"""Group concurrent requests into one store round trip.

Callers `submit` an item and await its answer; one task per batcher takes everything
waiting (up to `max_items`) and hands it to `process`, which answers each item. While a
round runs, new items queue up for the next, so under load each round carries many."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

I = TypeVar("I")  # noqa: E741
R = TypeVar("R")
log = logging.getLogger("services.coupon.batching")


class Batcher(Generic[I, R]):
    def __init__(
        self, process: Callable[[list[I]], Awaitable[list[R]]], *, max_items: int, name: str
    ) -> None:
        self._process = process
        self._max_items = max_items
        self._name = name
        self._waiting: list[tuple[I, asyncio.Future[R]]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: Rounds run and items answered, for tests and probes.
        self.rounds = 0

    async def submit(self, item: I) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        self._wakeup.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"batcher:{self._name}")
        return await future

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._waiting:
                taken = self._waiting[: self._max_items]
                del self._waiting[: self._max_items]
                await self._round(taken)

    async def _round(self, taken: list[tuple[I, asyncio.Future[R]]]) -> None:
        self.rounds += 1
        try:
            answers = await self._process([item for item, _ in taken])
        except Exception as exc:  # every caller of the round hears of the fault
            log.exception("batch round failed", extra={"batcher": self._name})
            for _, future in taken:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), answer in zip(taken, answers, strict=True):
            if not future.done():
                future.set_result(answer)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
