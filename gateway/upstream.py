"""Calling the services: pooled clients, retries where a repeat is harmless, and
transport failures turned into problems that name the service."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    wait_exponential_jitter,
)

from gateway.settings import GatewaySettings
from servicekit.errors import DomainError
from servicekit.idempotency import HEADER as IDEMPOTENCY_KEY

#: Methods HTTP defines as idempotent: sending one twice has the effect of sending it once.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
#: Answers that mean "not handled, try again": nothing was done.
BUSY_STATUSES = frozenset({502, 503})
#: What a client of server-sent events accepts (browsers' EventSource always sends it).
EVENT_STREAM = "text/event-stream"
#: The request never reached the service.
NOT_REACHED = (httpx.ConnectError, httpx.ConnectTimeout)


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


#: Connections per pooled client. httpcore scans every connection of its pool whenever a
#: request is queued or a connection freed, so one pool of 200 spends most of the gateway's
#: CPU scanning at 200 requests in flight (measured with bench/coupon_claims: 11.6 ms of
#: CPU per proxied claim, 6 ms with pools of 25).
CONNECTIONS_PER_CLIENT = 25


class UpstreamClients:
    """The pooled clients every upstream call shares. Each call goes to the client with the
    fewest exchanges open, so no small pool makes a caller wait while another has room."""

    def __init__(self, settings: GatewaySettings) -> None:
        total = settings.upstream_max_connections
        count = max(1, -(-total // CONNECTIONS_PER_CLIENT))
        self._transports = [_CountingTransport(-(-total // count)) for _ in range(count)]
        self._clients = [make_upstream_client(settings, t) for t in self._transports]

    def pick(self) -> httpx.AsyncClient:
        least = min(range(len(self._clients)), key=lambda n: self._transports[n].open)
        return self._clients[least]

    async def __aenter__(self) -> UpstreamClients:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for client in self._clients:
            await client.aclose()


class _CountingTransport(httpx.AsyncHTTPTransport):
    """A pooled transport that knows how many exchanges it has open (sent and not yet read
    to the end or closed)."""

    def __init__(self, connections: int) -> None:
        # Keep every pooled connection: reconnecting per request costs more than it saves.
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        super().__init__(limits=limits)
        self.open = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.open += 1
        try:
            response = await super().handle_async_request(request)
        except BaseException:
            self.open -= 1
            raise
        response.stream = _ClosingStream(response.stream, self)
        return response


class _ClosingStream(httpx.AsyncByteStream):
    def __init__(
        self, stream: httpx.AsyncByteStream | httpx.SyncByteStream, owner: _CountingTransport
    ) -> None:
        assert isinstance(stream, httpx.AsyncByteStream)
        self._stream, self._owner, self._closed = stream, owner, False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._owner.open -= 1
        await self._stream.aclose()


def make_upstream_client(
    settings: GatewaySettings, transport: httpx.AsyncBaseTransport
) -> httpx.AsyncClient:
    connect = settings.upstream_connect_timeout
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(
            connect=connect, read=settings.upstream_read_timeout, write=connect, pool=connect
        ),
        # Redirects go back to the client (with their Location made public), not followed here.
        follow_redirects=False,
        # Service-to-service traffic is internal: an HTTP(S)_PROXY set for the outside world
        # must not capture it.
        trust_env=False,
    )


def may_retry(request: httpx.Request) -> bool:
    """A call may be repeated when repeating it cannot do the work twice."""
    return request.method in IDEMPOTENT_METHODS or (
        request.method == "POST" and IDEMPOTENCY_KEY in request.headers
    )


async def send_upstream(
    client: httpx.AsyncClient, request: httpx.Request, *, service: str, settings: GatewaySettings
) -> httpx.Response:
    """Send `request` and return the service's answer, its body still unread (the caller
    streams it and closes it). Transport failures become problems naming `service`."""
    attempts = 1 + settings.upstream_retries if may_retry(request) else 1
    if EVENT_STREAM in request.headers.get("accept", ""):
        # A live event stream is quiet between events for as long as it likes: a read
        # timeout would cut it. The service's keep-alive comments and the client's
        # leaving end it instead.
        request.extensions["timeout"] = {**request.extensions.get("timeout", {}), "read": None}
    try:
        return await _retrying(attempts, settings.upstream_retry_backoff)(
            client.send, request, stream=True
        )
    except NOT_REACHED as exc:
        raise UpstreamUnavailable(service, f"the {service} service cannot be reached") from exc
    except httpx.PoolTimeout as exc:
        raise UpstreamUnavailable(
            service, "the gateway has no free connection; try again", code="gateway_busy"
        ) from exc
    except httpx.TimeoutException as exc:
        raise UpstreamTimeout(service) from exc
    except httpx.TransportError as exc:
        raise UpstreamFailed(service, type(exc).__name__) from exc


def _retrying(attempts: int, backoff: float) -> AsyncRetrying:
    return AsyncRetrying(
        stop=stop_after_attempt(attempts),
        # Short pauses: a client is waiting, and a busy replica is usually one of several.
        wait=wait_exponential_jitter(multiplier=backoff, max=1.0, jitter=backoff),
        retry=retry_if_exception_type(NOT_REACHED) | retry_if_result(_is_busy),
        before_sleep=_close_discarded,
        # Out of attempts: hand back the service's own last answer (or raise its error).
        retry_error_callback=_last_outcome,
    )


def _is_busy(response: httpx.Response) -> bool:
    return response.status_code in BUSY_STATUSES


async def _close_discarded(state: RetryCallState) -> None:
    """A busy answer that will be retried gives its connection back to the pool."""
    if state.outcome is not None and not state.outcome.failed:
        await state.outcome.result().aclose()


def _last_outcome(state: RetryCallState) -> httpx.Response:
    assert state.outcome is not None
    return state.outcome.result()
