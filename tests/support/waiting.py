"""Wait on a condition, never on a fixed sleep."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T] | T], *, until: Callable[[T], bool] = bool, within: float = 30
) -> T:
    """Poll `probe` (sync or async) until `until(result)` holds; fail with the last result
    after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = probe()
        if inspect.isawaitable(result):
            result = await result
        if until(result):
            return result
        if loop.time() > deadline:
            raise AssertionError(
                f"condition not met within {within}s; last value: {_shown(result)}"
            )
        await asyncio.sleep(0.05)


def _shown(result: object) -> str:
    """The last value as a failure names it: a response with its body, which says why."""
    if isinstance(result, httpx.Response):
        return f"{result!r} {result.text[:2000]}"
    return repr(result)
