"""Rate limits as fixed windows: a limit allows `limit` requests per `seconds`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class Limit:
    """`scope` names what is limited (customer, channel, partner, batch); `key` which one."""

    scope: str
    key: str
    limit: int
    seconds: int

    def window_start(self, now: datetime) -> int:
        return int(now.timestamp()) // self.seconds * self.seconds

    def counter_id(self, tenant: str, now: datetime) -> str:
        return f"{tenant}:{self.scope}:{self.key}:{self.seconds}:{self.window_start(now)}"

    def retry_after(self, now: datetime) -> int:
        """Whole seconds until the window ends (at least 1)."""
        end = self.window_start(now) + self.seconds
        return max(1, math.ceil(end - now.timestamp()))


def window_start_time(limit: Limit, now: datetime) -> datetime:
    return datetime.fromtimestamp(limit.window_start(now), UTC)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: Limit | None = None
    retry_after: int = 0


def judge(limits: list[Limit], positions: list[int], now: datetime) -> Verdict:
    """A request is allowed when its position in every window is within the limit."""
    for limit, position in zip(limits, positions, strict=True):
        if position > limit.limit:
            return Verdict(False, limit, limit.retry_after(now))
    return Verdict(True)
