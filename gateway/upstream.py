"""Calling the services: one pooled client, retries where a repeat is harmless, and
transport failures turned into problems that name the service."""

from __future__ import annotations

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


def make_upstream_client(settings: GatewaySettings) -> httpx.AsyncClient:
    """The one client every upstream call shares, so connections are pooled and reused."""
    connect = settings.upstream_connect_timeout
    return httpx.AsyncClient(
        timeout=httpx.Timeout(
            connect=connect, read=settings.upstream_read_timeout, write=connect, pool=connect
        ),
        limits=httpx.Limits(
            max_connections=settings.upstream_max_connections,
            # Keep every pooled connection: reconnecting per request costs more than it saves.
            max_keepalive_connections=settings.upstream_max_connections,
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
