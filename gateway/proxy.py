"""Routing: `/api/v1/<domain>/<path>` goes to `<the domain's service>/<path>`.

What reaches a service is decided here, header by header: the tenant comes from the
authenticated principal, the request id from this request's context, trace context from
the instrumented client; of the client's own headers only the listed ones pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from gateway.auth import Principal, principal_of
from gateway.settings import GatewaySettings
from gateway.upstream import EVENT_STREAM, Upstream, UpstreamAnswer, UpstreamRequest
from servicekit.context import current_request_id
from servicekit.errors import NotFound
from servicekit.headers import (
    ACTOR_ID_HEADER,
    ACTOR_KIND_HEADER,
    ACTOR_ROLES_HEADER,
    FORWARDED_PREFIX_HEADER,
    REQUEST_ID_HEADER,
    TENANT_HEADER,
)

API_PREFIX = "/api/v1"
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

#: The client's headers a service may see. A list of what passes, not of what is dropped:
#: services trust what the gateway sends, so a header nobody thought of (a spoofed
#: `X-Tenant-Id`, `Authorization`, cookies, hop-by-hop headers) never gets through.
FORWARDED_REQUEST_HEADERS = frozenset(
    {
        "accept",
        "accept-encoding",
        "accept-language",
        "content-type",
        "content-encoding",
        "idempotency-key",
        "if-match",
        "if-none-match",
        "if-modified-since",
        "if-unmodified-since",
        "last-event-id",  # a server-sent event stream resumes after it
        "user-agent",
    }
)
#: Headers about one connection, not the message (RFC 9110 7.6.1).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
#: The gateway's own server and middleware write these; a service's copy would repeat them.
WRITTEN_BY_GATEWAY = frozenset({"date", "server", REQUEST_ID_HEADER.lower()})

ROUTE = f"{API_PREFIX}/{{domain}}/{{path:path}}"


async def forward(request: Request) -> Response:
    """Forward the request to the domain's service and stream its answer back as it is.

    A plain Starlette endpoint: a catch-all has nothing for FastAPI to validate, and
    solving dependencies cost as much CPU as the rest of the route."""
    principal = await principal_of(request)
    settings: GatewaySettings = request.app.state.settings
    upstream: Upstream = request.app.state.upstream
    domain = request.path_params["domain"]
    base = settings.upstreams().get(domain)
    if base is None:
        raise NotFound(f"there is no service for {domain!r}", code="unknown_service")
    public_prefix = request.scope.get("root_path", "") + f"{API_PREFIX}/{domain}"
    headers = upstream_headers(request, principal, public_prefix)
    call = await upstream_request(request, base, domain, headers)
    answer = await upstream.send(call, service=domain)
    return await client_response(answer, base, public_prefix)


def add_proxy_route(app: FastAPI) -> None:
    """The catch-all, added last: every more specific route is matched before it."""
    app.router.add_route(ROUTE, forward, methods=METHODS, include_in_schema=False)


async def upstream_request(
    request: Request, base: str, domain: str, headers: list[tuple[str, str]]
) -> UpstreamRequest:
    """The call to the service at `base`: same method, path and query, the body read whole
    (a retried call must send it again)."""
    url = base + upstream_path(request, domain)
    query = request.scope["query_string"]
    if query:
        url += "?" + query.decode("latin-1")
    return UpstreamRequest(
        request.method,
        url,
        headers,
        await request.body(),
        streams_events=EVENT_STREAM in request.headers.get("accept", ""),
    )


async def client_response(answer: UpstreamAnswer, base: str, public_prefix: str) -> Response:
    """The service's answer as the client gets it: small ones whole, others streamed."""
    headers = downstream_headers(answer.raw_headers, base, public_prefix)
    if _is_small(answer):
        response = Response(await answer.read(), status_code=answer.status)
        response.raw_headers = headers
        return response
    return UpstreamResponse(answer, headers)


#: Answers up to this size are read whole and sent in one piece. Streaming a small JSON
#: answer costs a task, a pull per chunk and an extra ASGI message or two for nothing.
WHOLE_BODY_LIMIT = 64 * 1024


def _is_small(answer: UpstreamAnswer) -> bool:
    length = answer.header("content-length")
    return length is not None and length.isdigit() and int(length) <= WHOLE_BODY_LIMIT


def upstream_path(request: Request, domain: str) -> str:
    """The path after `/api/v1/<domain>`, still percent-encoded as the client sent it, so an
    encoded `/` inside one segment (`a%2Fb`) stays inside it."""
    raw = (request.scope.get("raw_path") or b"").decode("latin-1")
    _, found, rest = raw.partition(f"{API_PREFIX}/{domain}/")
    if found:
        return "/" + rest
    # The client percent-encoded the domain itself; the decoded path is the best we have.
    return "/" + quote(request.path_params["path"])


def upstream_headers(
    request: Request,
    principal: Principal | None,
    public_prefix: str,
    passed: frozenset[str] = FORWARDED_REQUEST_HEADERS,
) -> list[tuple[str, str]]:
    """What the service receives: the client's `passed` headers, the principal's identity
    (none for the public routes, whose service verifies the caller itself), the request id
    and the public prefix."""
    headers = [(k, v) for k, v in request.headers.items() if k in passed]
    if "accept-encoding" not in request.headers:
        # The body is passed on as the service encodes it: ask for what any client reads.
        headers.append(("accept-encoding", "identity"))
    if principal is not None:
        headers.append((TENANT_HEADER, principal.tenant))
        headers.append((ACTOR_ID_HEADER, principal.subject))
        headers.append((ACTOR_KIND_HEADER, str(principal.kind)))
        headers.append((ACTOR_ROLES_HEADER, ",".join(sorted(principal.roles))))
    headers.append((REQUEST_ID_HEADER, current_request_id.get() or ""))
    # Lets the service name the public path (a problem's `instance`), not its own.
    headers.append((FORWARDED_PREFIX_HEADER, public_prefix))
    return headers


def downstream_headers(
    raw_headers: Sequence[tuple[bytes, bytes]], upstream_base: str, public_prefix: str
) -> list[tuple[bytes, bytes]]:
    """The service's response headers the client gets: all but the hop-by-hop ones (and
    those its `Connection` header names), with redirects pointed at the gateway."""
    named = {
        token.strip().lower()
        for name, value in raw_headers
        if name.lower() == b"connection"
        for token in value.decode("latin-1").split(",")
    }
    dropped = HOP_BY_HOP | WRITTEN_BY_GATEWAY | named
    headers = []
    for name, value in raw_headers:
        name = name.lower()
        if name.decode("latin-1") in dropped:
            continue
        if name == b"location":
            location = public_location(value.decode("latin-1"), upstream_base, public_prefix)
            value = location.encode("latin-1")
        headers.append((name, value))
    return headers


def public_location(location: str, upstream_base: str, public_prefix: str) -> str:
    """A `Location` the service wrote for itself (`http://customer:8101/x` or `/x`) as the
    client must follow it (`/api/v1/customer/x`); any other location is left alone."""
    if location.startswith(upstream_base + "/"):
        return public_prefix + location[len(upstream_base) :]
    if location.startswith("/") and not location.startswith("//"):
        return public_prefix + location
    return location


class UpstreamResponse(StreamingResponse):
    """A service's answer streamed to the client as it arrives. Its connection goes back to
    the pool however the stream ends, even when the client leaves halfway."""

    def __init__(self, upstream: UpstreamAnswer, headers: list[tuple[bytes, bytes]]) -> None:
        super().__init__(upstream.chunks(), status_code=upstream.status)
        self.raw_headers = headers
        self.upstream = upstream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.upstream.close()
