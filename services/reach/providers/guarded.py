"""Any provider, guarded: transient failures retried with jittered backoff (tenacity), and a
circuit breaker that stops calling a provider that keeps failing, so its timeouts do not
stall the sends of other channels. While open, sends fail fast as `provider_unavailable`."""

from __future__ import annotations

import time

from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from services.reach.domain.breaker import CircuitBreaker
from services.reach.providers.base import (
    Outbound,
    Outcome,
    Provider,
    ProviderFailure,
    TransientFailure,
)


class Guarded:
    def __init__(
        self,
        provider: Provider,
        *,
        attempts: int = 3,
        backoff: float = 0.2,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.provider = provider
        self.attempts = attempts
        self.backoff = backoff
        self.breaker = breaker or CircuitBreaker()

    @property
    def name(self) -> str:
        return self.provider.name

    async def send_many(self, messages: list[Outbound]) -> list[Outcome]:
        if not self.breaker.allow(time.monotonic()):
            return [TransientFailure("provider_unavailable") for _ in messages]
        outcomes = await self._with_retries(messages)
        self._record(outcomes)
        return outcomes

    async def _with_retries(self, messages: list[Outbound]) -> list[Outcome]:
        """Retry only the messages that failed transiently, keeping each one's place."""
        outcomes: list[Outcome] = [TransientFailure("not_attempted")] * len(messages)
        pending = list(range(len(messages)))
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(_Again),
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential_jitter(multiplier=self.backoff, max=5 * self.backoff),
            reraise=False,
            retry_error_callback=lambda _: None,
        )
        async for attempt in retrying:
            with attempt:
                results = await self.provider.send_many([messages[i] for i in pending])
                for i, outcome in zip(pending, results, strict=True):
                    outcomes[i] = outcome
                pending = [i for i in pending if isinstance(outcomes[i], TransientFailure)]
                if pending:
                    raise _Again
        return outcomes

    def _record(self, outcomes: list[Outcome]) -> None:
        now = time.monotonic()
        transient = [o for o in outcomes if isinstance(o, TransientFailure)]
        if outcomes and len(transient) == len(outcomes):
            self.breaker.failed(now)
        elif any(not isinstance(o, ProviderFailure) for o in outcomes):
            self.breaker.succeeded()

    async def close(self) -> None:
        await self.provider.close()


class _Again(Exception):
    """Some messages failed transiently: another attempt for them."""
