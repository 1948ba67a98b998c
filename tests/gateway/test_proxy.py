"""Routing: what reaches a service, and what comes back."""

from __future__ import annotations

import asyncio
import json

from fastapi import Request
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from gateway.auth import Principal, PrincipalKind
from gateway.proxy import downstream_headers, public_location
from tests.gateway.harness import TENANT, running_gateway
from tests.gateway.upstreams import PROBLEM, TrickleService, catalogue_service, problem_service
from tests.support.servers import serve
from tests.support.waiting import eventually


async def test_path_query_and_body_reach_the_domains_service(echo_url: str) -> None:
    async with running_gateway(customer_url=echo_url) as gateway:
        response = await gateway.post(
            "/api/v1/customer/customers/cus_1/notes?b=2&a=1&a=3",
            json={"text": "called back"},
            headers=TENANT,
        )

    assert response.status_code == 200
    received = response.json()
    assert received["method"] == "POST"
    assert received["raw_path"] == "/customers/cus_1/notes"
    assert received["query"] == "b=2&a=1&a=3"
    assert json.loads(received["body"]) == {"text": "called back"}
    assert received["headers"]["content-type"] == "application/json"


async def test_an_encoded_slash_stays_inside_its_segment(echo_url: str) -> None:
    async with running_gateway(tagging_url=echo_url) as gateway:
        response = await gateway.get("/api/v1/tagging/tags/vip%2Fgold", headers=TENANT)

    assert response.json()["raw_path"] == "/tags/vip%2Fgold"


async def test_only_listed_client_headers_pass(echo_url: str) -> None:
    sent = {
        **TENANT,
        "Accept": "application/json",
        "Accept-Language": "zh-CN",
        "Idempotency-Key": "key-00000001",
        "If-Match": '"v1"',
        "Authorization": "Bearer client-token",
        "Cookie": "session=abc",
        "Proxy-Authorization": "Basic eA==",
        "X-Forwarded-Host": "evil.example",
    }
    async with running_gateway(customer_url=echo_url) as gateway:
        response = await gateway.post("/api/v1/customer/customers", json={}, headers=sent)

    received = response.json()["headers"]
    assert received["accept"] == "application/json"
    assert received["accept-language"] == "zh-CN"
    assert received["idempotency-key"] == "key-00000001"
    assert received["if-match"] == '"v1"'
    for withheld in ("authorization", "cookie", "proxy-authorization", "x-forwarded-host"):
        assert withheld not in received


class FixedTenant:
    """An authenticator whose principal belongs to one tenant, whatever the client says."""

    async def authenticate(self, request: Request) -> Principal:
        return Principal(tenant="brand-b", subject="stf_1", kind=PrincipalKind.STAFF)


async def test_the_tenant_comes_from_the_principal_not_the_client(echo_url: str) -> None:
    async with running_gateway(FixedTenant(), customer_url=echo_url) as gateway:
        response = await gateway.get("/api/v1/customer/customers", headers={"X-Tenant-Id": "evil"})

    assert response.json()["headers"]["x-tenant-id"] == "brand-b"


async def test_the_request_id_reaches_the_service_and_is_echoed_once(echo_url: str) -> None:
    async with running_gateway(customer_url=echo_url) as gateway:
        given = await gateway.get(
            "/api/v1/customer/customers", headers={**TENANT, "X-Request-Id": "req-given-1"}
        )
        made = await gateway.get("/api/v1/customer/customers", headers=TENANT)

    assert given.json()["headers"]["x-request-id"] == "req-given-1"
    assert given.headers.get_list("x-request-id") == ["req-given-1"]
    made_id = made.headers["x-request-id"]
    assert made_id
    assert made.json()["headers"]["x-request-id"] == made_id


async def test_trace_context_reaches_the_service_within_the_gateways_trace(
    echo_url: str, spans: InMemorySpanExporter
) -> None:
    async with running_gateway(customer_url=echo_url) as gateway:
        response = await gateway.get("/api/v1/customer/customers", headers=TENANT)

    _version, trace_id, parent_id, _flags = response.json()["headers"]["traceparent"].split("-")

    def gateway_spans() -> list:
        return [
            s
            for s in spans.get_finished_spans()
            if format(s.context.trace_id, "032x") == trace_id
            and s.kind == SpanKind.SERVER
            and s.attributes.get("http.route") == "/api/v1/{domain}/{path}"
        ]

    (server_span,) = await eventually(gateway_spans)
    (client_span,) = [
        s for s in spans.get_finished_spans() if format(s.context.span_id, "016x") == parent_id
    ]
    assert client_span.kind == SpanKind.CLIENT
    assert client_span.parent.span_id == server_span.context.span_id


async def test_a_services_problem_passes_through_untouched() -> None:
    async with serve(problem_service()) as coupon, running_gateway(coupon_url=coupon) as gateway:
        response = await gateway.post("/api/v1/coupon/claims", json={}, headers=TENANT)

    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == PROBLEM


async def test_the_services_headers_come_back(echo_url: str) -> None:
    async with running_gateway(customer_url=echo_url) as gateway:
        response = await gateway.get("/api/v1/customer/customers", headers=TENANT)

    assert response.headers["x-served-by"] == "echo"
    assert response.headers["etag"] == '"v1"'
    assert len(response.headers.get_list("date")) == 1
    assert len(response.headers.get_list("server")) == 1


async def test_an_answer_streams_back_as_it_arrives() -> None:
    trickle = TrickleService()
    async with (
        serve(trickle.app) as url,
        running_gateway(reach_url=url) as gateway,
        gateway.stream("GET", "/api/v1/reach/exports/e1", headers=TENANT) as response,
    ):
        parts = response.aiter_raw()
        try:
            async with asyncio.timeout(10):  # a buffering gateway would hold the first part
                first = await anext(parts)
        finally:
            trickle.released.set()
        rest = b"".join([chunk async for chunk in parts])

    assert response.status_code == 200
    assert first == b"first\n"
    assert rest == b"second\n"


async def test_a_services_redirect_points_at_the_gateway() -> None:
    app, _ = catalogue_service("customer")
    async with serve(app) as customer, running_gateway(customer_url=customer) as gateway:
        # The service redirects /items/ to /items; the gateway must neither follow it nor
        # leak the service's own address.
        response = await gateway.get("/api/v1/customer/items/?limit=5", headers=TENANT)

    assert response.status_code == 307
    assert response.headers["location"] == "/api/v1/customer/items?limit=5"


async def test_an_unknown_domain_is_not_found() -> None:
    async with running_gateway() as gateway:
        response = await gateway.get("/api/v1/warehouse/stock", headers=TENANT)

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "unknown_service"


def test_hop_by_hop_headers_do_not_come_back() -> None:
    upstream = [
        (b"Connection", b"keep-alive, X-Session-Hint"),
        (b"Keep-Alive", b"timeout=5"),
        (b"Transfer-Encoding", b"chunked"),
        (b"X-Session-Hint", b"abc"),
        (b"Set-Cookie", b"a=1"),
        (b"Set-Cookie", b"b=2"),
        (b"Content-Type", b"application/json"),
    ]

    headers = downstream_headers(upstream, "http://customer:8101", "/api/v1/customer")

    assert headers == [
        (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
        (b"content-type", b"application/json"),
    ]


def test_locations_the_service_wrote_for_itself_become_public() -> None:
    base, prefix = "http://customer:8101", "/api/v1/customer"

    assert public_location("http://customer:8101/customers/c1", base, prefix) == (
        "/api/v1/customer/customers/c1"
    )
    assert public_location("/customers/c1", base, prefix) == "/api/v1/customer/customers/c1"
    assert public_location("https://pay.example/x", base, prefix) == "https://pay.example/x"
    assert public_location("//cdn.example/x", base, prefix) == "//cdn.example/x"
