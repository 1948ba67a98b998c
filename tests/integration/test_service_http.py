"""The customer service over real HTTP: bad input is a problem+json that writes nothing,
the tenant header is required and isolates, request ids travel, a request is one server
span of its caller's trace, health and readiness answer, and cursor pagination walks every
customer exactly once."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from servicekit.errors import PROBLEM_JSON
from servicekit.pagination import encode_cursor
from servicekit.telemetry import tracer
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


def customer_body(**overrides: Any) -> dict[str, Any]:
    return {"display_name": "Li Lei", "source_channel": "mini_program", **overrides}


async def register(http: httpx.AsyncClient, tenant: str, **overrides: Any) -> dict[str, Any]:
    response = await http.post(
        "/customers", json=customer_body(**overrides), headers={"X-Tenant-Id": tenant}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def list_page(http: httpx.AsyncClient, tenant: str, **params: Any) -> httpx.Response:
    return await http.get("/customers", params=params, headers={"X-Tenant-Id": tenant})


async def customer_count(http: httpx.AsyncClient, tenant: str) -> int:
    response = await list_page(http, tenant, limit=200)
    assert response.status_code == 200, response.text
    return len(response.json()["items"])


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def error_fields(body: dict[str, Any]) -> set[str]:
    return {e["field"] for e in body["errors"]}


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (customer_body(display_name={"$gt": ""}), "display_name"),
        (customer_body(display_name={"$ne": None}), "display_name"),
        (customer_body(display_name=""), "display_name"),
        (customer_body(display_name="   "), "display_name"),
        (customer_body(display_name="x" * 101), "display_name"),
        (customer_body(source_channel="telepathy"), "source_channel"),
        (customer_body(source_channel={"$in": ["store"]}), "source_channel"),
        (customer_body(tenant="someone-else"), "tenant"),
        ({"source_channel": "store"}, "display_name"),
    ],
    ids=[
        "operator-gt",
        "operator-ne",
        "empty-name",
        "blank-name",
        "long-name",
        "unknown-channel",
        "operator-in",
        "tenant-in-body",
        "missing-name",
    ],
)
async def test_bad_input_is_a_problem_naming_the_field_and_writes_nothing(
    http: httpx.AsyncClient, tenant: str, body: dict[str, Any], field: str
) -> None:
    before = await customer_count(http, tenant)
    response = await http.post("/customers", json=body, headers={"X-Tenant-Id": tenant})
    problem = assert_problem(response, 422)
    assert field in error_fields(problem)
    assert all(e["reason"] for e in problem["errors"])
    assert await customer_count(http, tenant) == before


async def test_a_body_that_is_not_json_is_a_problem_and_writes_nothing(
    http: httpx.AsyncClient, tenant: str
) -> None:
    response = await http.post(
        "/customers",
        content=b"display_name=Li",
        headers={"X-Tenant-Id": tenant, "content-type": "application/json"},
    )
    assert_problem(response, 422)
    assert await customer_count(http, tenant) == 0


async def test_a_malformed_customer_id_is_a_problem(http: httpx.AsyncClient, tenant: str) -> None:
    response = await http.get("/customers/not-an-id", headers={"X-Tenant-Id": tenant})
    assert error_fields(assert_problem(response, 422)) == {"customer_id"}


# --------------------------------------------------------------------------- tenant header


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_missing_tenant_header_is_a_problem(http: httpx.AsyncClient, method: str) -> None:
    response = await http.request(method, "/customers", json=customer_body())
    assert "X-Tenant-Id" in error_fields(assert_problem(response, 422))


@pytest.mark.parametrize("bad_tenant", ["ACME", "-acme", "acme corp", "a" * 64, "acme.cn"])
async def test_a_malformed_tenant_is_a_problem_and_writes_nothing(
    http: httpx.AsyncClient, tenant: str, bad_tenant: str
) -> None:
    response = await http.post(
        "/customers", json=customer_body(), headers={"X-Tenant-Id": bad_tenant}
    )
    assert error_fields(assert_problem(response, 422)) == {"X-Tenant-Id"}


async def test_tenants_do_not_see_each_others_customers(
    http: httpx.AsyncClient, unique: str
) -> None:
    brand_a, brand_b = f"a{unique}", f"b{unique}"
    customer = await register(http, brand_a, display_name="Only in A")
    path = f"/customers/{customer['id']}"

    from_a = await http.get(path, headers={"X-Tenant-Id": brand_a})
    assert from_a.status_code == 200 and from_a.json() == customer
    from_b = await http.get(path, headers={"X-Tenant-Id": brand_b})
    assert assert_problem(from_b, 404)["code"] == "customer_not_found"
    assert await customer_count(http, brand_b) == 0


async def test_a_registered_customer_reads_back(http: httpx.AsyncClient, tenant: str) -> None:
    customer = await register(http, tenant, display_name="  Han Meimei  ", source_channel="app")
    assert re.fullmatch(r"cus_[0-9a-f]{32}", customer["id"])
    assert customer["tenant"] == tenant
    assert customer["display_name"] == "Han Meimei"
    assert customer["lifecycle_stage"] == "lead"
    response = await http.get(f"/customers/{customer['id']}", headers={"X-Tenant-Id": tenant})
    assert response.json() == customer


# --------------------------------------------------------------------------- request ids


async def test_a_given_request_id_is_echoed(http: httpx.AsyncClient, tenant: str) -> None:
    headers = {"X-Tenant-Id": tenant, "X-Request-Id": "req-from-gateway-1"}
    ok = await http.get("/customers", headers=headers)
    refused = await http.get("/customers/nope", headers=headers)
    assert ok.headers["x-request-id"] == "req-from-gateway-1"
    assert refused.headers["x-request-id"] == "req-from-gateway-1"


async def test_a_request_id_is_made_when_none_is_given(
    http: httpx.AsyncClient, tenant: str
) -> None:
    first = await http.get("/customers", headers={"X-Tenant-Id": tenant})
    second = await http.get("/customers", headers={"X-Tenant-Id": tenant})
    assert re.fullmatch(r"[0-9a-f]{32}", first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_an_oversized_request_id_is_cut(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz", headers={"X-Request-Id": "r" * 1000})
    assert response.headers["x-request-id"] == "r" * 128


# --------------------------------------------------------------------------- tracing


async def test_a_request_is_one_server_span_of_the_callers_trace_named_by_its_route(
    http: httpx.AsyncClient, tenant: str, spans: InMemorySpanExporter
) -> None:
    customer = await register(http, tenant)
    with tracer("tests").start_as_current_span("caller") as caller:
        response = await http.get(f"/customers/{customer['id']}", headers={"X-Tenant-Id": tenant})
        probe = await http.get("/healthz")
    assert response.status_code == 200 and probe.status_code == 200
    trace_id = caller.get_span_context().trace_id

    def server_spans() -> list:
        return [
            s
            for s in spans.get_finished_spans()
            if s.context.trace_id == trace_id and s.kind == SpanKind.SERVER
        ]

    (server,) = await eventually(server_spans)  # the probe is not traced
    assert server.name == "GET /customers/{customer_id}"
    assert server.attributes["http.route"] == "/customers/{customer_id}"
    assert server.attributes["http.response.status_code"] == 200
    (client,) = [
        s for s in spans.get_finished_spans() if s.context.span_id == server.parent.span_id
    ]
    assert client.kind == SpanKind.CLIENT
    assert client.parent.span_id == caller.get_span_context().span_id


# --------------------------------------------------------------------------- health


async def test_liveness_answers(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readiness_reports_the_store_broker_and_workers(http: httpx.AsyncClient) -> None:
    response = await http.get("/readyz")
    assert response.status_code == 200, response.text
    state = response.json()
    assert state["ready"] is True
    assert state["checks"] == {"store": "ok", "broker": "ok"}
    assert state["workers"]["outbox-relay"] == "running"
    assert set(state["workers"].values()) == {"running"}


# --------------------------------------------------------------------------- pagination


async def test_cursor_pagination_walks_every_customer_once(
    http: httpx.AsyncClient, tenant: str
) -> None:
    created = await asyncio.gather(
        *(register(http, tenant, display_name=f"Shopper {i}") for i in range(7))
    )
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        response = await list_page(http, tenant, **params)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append([c["id"] for c in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 5, "pagination does not end"

    assert [len(p) for p in pages] == [3, 3, 1]
    seen = [customer_id for page in pages for customer_id in page]
    assert len(seen) == len(set(seen)) == 7
    assert set(seen) == {c["id"] for c in created}
    assert seen == sorted(seen)  # a stable order, so a page never skips or repeats


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!!",
        encode_cursor({"_id": {"$gt": ""}}),
        encode_cursor({"_id": ["cus_1"]}),
        encode_cursor({"registered_at": "2024-01-01"}),
    ],
    ids=["garbage", "operator", "list", "foreign-key"],
)
async def test_a_bad_cursor_is_a_problem(http: httpx.AsyncClient, tenant: str, cursor: str) -> None:
    response = await list_page(http, tenant, cursor=cursor)
    assert error_fields(assert_problem(response, 422)) == {"cursor"}


@pytest.mark.parametrize("limit", [0, -1, 201, "many"])
async def test_a_limit_out_of_range_is_a_problem(
    http: httpx.AsyncClient, tenant: str, limit: object
) -> None:
    response = await list_page(http, tenant, limit=limit)
    assert error_fields(assert_problem(response, 422)) == {"limit"}
