"""A circuit breaker per provider: after `threshold` failures in a row the provider is not
called for `cool_down` seconds, so one failing provider fails fast instead of stalling every
send behind its timeouts; then one trial call decides whether it closes again. Pure: the
caller passes the time."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class CircuitBreaker:
    threshold: int = 5
    cool_down: float = 30.0
    failures: int = 0
    opened_at: float | None = None
    trial_running: bool = False

    def state(self, now: float) -> BreakerState:
        if self.opened_at is None:
            return BreakerState.CLOSED
        if now - self.opened_at < self.cool_down:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    def allow(self, now: float) -> bool:
        """May a call go out now? In half-open state only one trial at a time."""
        state = self.state(now)
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.OPEN or self.trial_running:
            return False
        self.trial_running = True
        return True

    def succeeded(self) -> None:
        self.failures, self.opened_at, self.trial_running = 0, None, False

    def failed(self, now: float) -> None:
        self.failures += 1
        if self.trial_running or self.failures >= self.threshold:
            self.opened_at, self.trial_running = now, False
