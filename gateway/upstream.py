"""Calling the services: one pooled client, retries where a repeat is harmless, and
transport failures turned into problems that name the service.

The client is aiohttp's rather than httpx's: proxying a small claim cost the gateway about
4 ms of CPU with httpx (httpx, httpcore and anyio were nearly half of it, measured with
bench/coupon_claims under cProfile) and aiohttp's pool hands out a connection without
scanning the others."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDict
from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    wait_exponential_jitter,
)
from yarl import URL

from gateway.settings import GatewaySettings
from servicekit.errors import DomainError
from servicekit.idempotency import HEADER as IDEMPOTENCY_KEY
from servicekit.telemetry import tracer

#: Methods HTTP defines as idempotent: sending one twice has the effect of sending it once.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
#: Answers that mean "not handled, try again": nothing was done.
BUSY_STATUSES = frozenset({502, 503})
#: What a client of server-sent events accepts (browsers' EventSource always sends it).
EVENT_STREAM = "text/event-stream"
#: The request never reached the service: nothing listens there.
NOT_REACHED = (aiohttp.ClientConnectorError,)
#: An idle pooled connection is dropped before the services' servers drop it (uvicorn's
#: keep-alive is 5 s), so a request is never written to a connection being closed.
KEEPALIVE_SECONDS = 4.0

_tracer = tracer("gateway.upstream")


class UpstreamUnavailable(DomainError):
    status = 503
    title = "Service unavailable"

    def __init__(self, service: str, detail: str, *, code: str = "upstream_unavailable") -> None:
        super().__init__(detail, code=code, service=service)


class UpstreamTimeout(DomainError):
    status = 504
    title = "Service timed out"

    def __init__(self, service: str) -> None:
        detail = f"the {service} service did not answer in time"
        super().__init__(detail, code="upstream_timeout", service=service)


class UpstreamFailed(DomainError):
    status = 502
    title = "Bad answer from a service"

    def __init__(self, service: str, reason: str) -> None:
        detail = f"the {service} service broke off the exchange ({reason})"
        super().__init__(detail, code="upstream_failed", service=service)


@dataclass
class UpstreamRequest:
    """One call to a service, as the gateway sends it (the body read whole, so a retried
    call can send it again)."""

    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    #: The answer is a live event stream: no read timeout cuts it.
    streams_events: bool = False

    def may_retry(self) -> bool:
        """A call may be repeated when repeating it cannot do the work twice."""
        if self.method in IDEMPOTENT_METHODS:
            return True
        return self.method == "POST" and any(
            name.lower() == IDEMPOTENCY_KEY.lower() for name, _ in self.headers
        )


@dataclass(frozen=True)
class Probe:
    """A short answer to a probe (readiness, OpenAPI document): status and body."""

    status: int
    body: bytes

    def json(self) -> Any:
        """The body as JSON; `ValueError` when it is not."""
        return json.loads(self.body)


class Upstream:
    """The gateway's client to the services: one pool of keep-alive connections shared by
    every route, opened with the app and closed with it."""

    def __init__(self, settings: GatewaySettings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None
        connect = settings.upstream_connect_timeout
        # `connect` bounds the wait for a pooled connection and a new one's handshake.
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=connect,
            sock_connect=connect,
            sock_read=settings.upstream_read_timeout,
        )
        self._event_timeout = aiohttp.ClientTimeout(
            total=None, connect=connect, sock_connect=connect
        )
        #: Exchanges begun and not yet read to the end or closed.
        self.open = 0

    async def __aenter__(self) -> Upstream:
        connector = aiohttp.TCPConnector(
            limit=self._settings.upstream_max_connections,
            limit_per_host=0,
            keepalive_timeout=KEEPALIVE_SECONDS,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            # The body passes through as the service encoded it.
            auto_decompress=False,
            # Service-to-service traffic is internal: an HTTP(S)_PROXY set for the outside
            # world must not capture it.
            trust_env=False,
            # A service's cookie is its client's, never to be sent on another's request.
            cookie_jar=aiohttp.DummyCookieJar(),
            # Only what the client sent, and what the gateway adds on purpose.
            skip_auto_headers=("User-Agent", "Content-Type"),
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def closed(self) -> bool:
        return self._session is None or self._session.closed

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("the upstream client is used outside the app's lifespan")
        return self._session

    async def send(self, request: UpstreamRequest, *, service: str) -> UpstreamAnswer:
        """Send `request` and return the service's answer, its body still unread (the
        caller reads or streams it, then closes it). Transport failures become problems
        naming `service`."""
        attempts = 1 + self._settings.upstream_retries if request.may_retry() else 1
        try:
            if attempts == 1:
                return await self._exchange(request)
            retrying = _retrying(attempts, self._settings.upstream_retry_backoff)
            return await retrying(self._exchange, request)
        except NOT_REACHED as exc:
            raise UpstreamUnavailable(service, f"the {service} service cannot be reached") from exc
        except aiohttp.ConnectionTimeoutError as exc:
            # Every connection was taken by other calls (this one no longer counts).
            if self.open >= self._settings.upstream_max_connections:
                raise UpstreamUnavailable(
                    service, "the gateway has no free connection; try again", code="gateway_busy"
                ) from exc
            raise UpstreamUnavailable(service, f"the {service} service cannot be reached") from exc
        except TimeoutError as exc:  # aiohttp's read timeouts are TimeoutErrors too
            raise UpstreamTimeout(service) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamFailed(service, type(exc).__name__) from exc

    async def _exchange(self, request: UpstreamRequest) -> UpstreamAnswer:
        headers = CIMultiDict(request.headers)
        self.open += 1
        try:
            with _tracer.start_as_current_span(
                request.method,
                kind=SpanKind.CLIENT,
                attributes={"http.request.method": request.method, "url.full": request.url},
            ) as span:
                propagate.inject(headers)
                response = await self._client().request(
                    request.method,
                    URL(request.url, encoded=True),  # the path as the client encoded it
                    headers=headers,
                    data=request.body or None,
                    allow_redirects=False,  # redirects go back to the client, made public
                    timeout=self._event_timeout if request.streams_events else self._timeout,
                )
                span.set_attribute("http.response.status_code", response.status)
                if response.status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
        except BaseException:
            self.open -= 1
            raise
        return UpstreamAnswer(response, self._closed_one)

    def _closed_one(self) -> None:
        self.open -= 1

    async def probe(
        self, url: str, *, within: float, headers: dict[str, str] | None = None
    ) -> Probe:
        """A GET whose whole answer is wanted `within` seconds. Raises `aiohttp.ClientError`
        or `TimeoutError` when there is none."""
        async with self._client().get(
            url, headers=headers, timeout=aiohttp.ClientTimeout(total=within)
        ) as response:
            return Probe(response.status, await response.read())


class UpstreamAnswer:
    """A service's answer whose body is still to be read; closing it gives its connection
    back to the pool (or drops the connection when the body was left halfway)."""

    def __init__(self, response: aiohttp.ClientResponse, on_close: Callable[[], None]) -> None:
        self._response = response
        self._on_close: Callable[[], None] | None = on_close
        self.status = response.status
        self.raw_headers = response.raw_headers

    def header(self, name: str) -> str | None:
        return self._response.headers.get(name)

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        finally:
            self.close()

    async def chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self._response.content.iter_any():
            yield chunk

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()
            self._on_close = None
        self._response.release()


def _retrying(attempts: int, backoff: float) -> Callable[..., Awaitable[UpstreamAnswer]]:
    return AsyncRetrying(
        stop=stop_after_attempt(attempts),
        # Short pauses: a client is waiting, and a busy replica is usually one of several.
        wait=wait_exponential_jitter(multiplier=backoff, max=1.0, jitter=backoff),
        retry=retry_if_exception_type(NOT_REACHED) | retry_if_result(_is_busy),
        before_sleep=_close_discarded,
        # Out of attempts: hand back the service's own last answer (or raise its error).
        retry_error_callback=_last_outcome,
    )


def _is_busy(answer: UpstreamAnswer) -> bool:
    return answer.status in BUSY_STATUSES


async def _close_discarded(state: RetryCallState) -> None:
    """A busy answer that will be retried gives its connection back to the pool."""
    if state.outcome is not None and not state.outcome.failed:
        state.outcome.result().close()


def _last_outcome(state: RetryCallState) -> UpstreamAnswer:
    assert state.outcome is not None
    return state.outcome.result()
