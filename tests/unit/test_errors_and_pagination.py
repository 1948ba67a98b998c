"""One renderer turns every error into RFC 9457 problem+json; cursors are opaque, round
trip, and refuse anything but the scalars this API put in them."""

from __future__ import annotations

import base64
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Query
from pydantic import BaseModel, ConfigDict, Field

from servicekit.errors import (
    PROBLEM_JSON,
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    install_problem_handlers,
)
from servicekit.pagination import decode_cursor, encode_cursor, next_cursor

LEAKY_SECRET = "mongodb://admin:hunter2@db-1"


class Signup(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: str = Field(min_length=1, max_length=100)
    age: int = Field(ge=0, default=0)


def problem_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/missing")
    async def missing() -> None:
        raise NotFound("no customer cus_1", code="customer_not_found")

    @app.post("/conflict")
    async def conflict() -> None:
        raise Conflict("the coupon was already redeemed", code="coupon_redeemed", order="o-1")

    @app.post("/rule")
    async def rule() -> None:
        raise DomainError("the budget is spent", code="budget_exhausted")

    @app.post("/invalid")
    async def invalid() -> None:
        raise InvalidInput("no custom field named shoe_size", field="custom.shoe_size")

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError(f"could not reach {LEAKY_SECRET}")

    @app.post("/signups")
    async def signup(body: Signup, limit: Annotated[int, Query(ge=1, le=10)] = 5) -> dict:
        return {"ok": True}

    return app


@pytest.fixture
async def client() -> httpx.AsyncClient:
    # raise_app_exceptions=False: Starlette re-raises a 500 after answering, as servers expect.
    transport = httpx.ASGITransport(app=problem_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as http:
        yield http


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert body["title"] and body["detail"]
    return body


def reasons_by_field(body: dict[str, Any]) -> dict[str, str]:
    return {e["field"]: e["reason"] for e in body["errors"]}


# --------------------------------------------------------------------------- errors


async def test_not_found_is_a_404_problem_with_its_code(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/missing"), 404)
    assert body["detail"] == "no customer cus_1"
    assert body["code"] == "customer_not_found"
    assert body["instance"] == "/missing"


async def test_conflict_is_a_409_problem_with_its_extra_members(
    client: httpx.AsyncClient,
) -> None:
    body = assert_problem(await client.post("/conflict"), 409)
    assert body["code"] == "coupon_redeemed"
    assert body["order"] == "o-1"


async def test_a_business_rule_refusal_is_a_422_problem(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.post("/rule"), 422)
    assert body["detail"] == "the budget is spent"
    assert body["code"] == "budget_exhausted"


async def test_invalid_input_names_the_field_and_the_reason(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.post("/invalid"), 422)
    assert reasons_by_field(body) == {"custom.shoe_size": "no custom field named shoe_size"}


async def test_an_unexpected_fault_is_a_500_that_leaks_nothing(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/crash")
    body = assert_problem(response, 500)
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text
    assert body["detail"] == "The server failed; the error is logged."


async def test_schema_violations_list_each_field_and_where_it_was(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/signups?limit=99", json={"display_name": "", "age": -1})
    body = assert_problem(response, 422)
    assert body["code"] == "validation_failed"
    located = {(e["in"], e["field"]) for e in body["errors"]}
    assert located == {("body", "display_name"), ("body", "age"), ("query", "limit")}
    assert all(e["reason"] for e in body["errors"])


@pytest.mark.parametrize(
    "injected",
    [{"$gt": ""}, {"$ne": None}, {"$regex": ".*"}, ["$where", "1"]],
    ids=["gt", "ne", "regex", "list"],
)
async def test_a_query_operator_where_a_string_belongs_is_refused(
    client: httpx.AsyncClient, injected: object
) -> None:
    body = assert_problem(await client.post("/signups", json={"display_name": injected}), 422)
    assert set(reasons_by_field(body)) == {"display_name"}


async def test_an_unknown_body_member_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/signups", json={"display_name": "Li", "$where": "1"})
    assert set(reasons_by_field(assert_problem(response, 422))) == {"$where"}


async def test_malformed_json_is_a_422_problem(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/signups", content=b'{"display_name": ', headers={"content-type": "application/json"}
    )
    assert assert_problem(response, 422)["errors"]


async def test_unknown_routes_and_methods_are_problems_too(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/nowhere"), 404)
    assert_problem(await client.delete("/missing"), 405)


# --------------------------------------------------------------------------- cursors


def raw_cursor(payload: bytes) -> str:
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


@pytest.mark.parametrize(
    "position",
    [{"_id": "cus_0a1b"}, {"_id": "cus_1", "registered_at": "2024-11-11T00:00:00Z", "n": 3}],
)
def test_a_cursor_round_trips(position: dict[str, Any]) -> None:
    cursor = encode_cursor(position)
    assert "=" not in cursor and "/" not in cursor and "+" not in cursor  # URL-safe
    assert decode_cursor(cursor) == position


@pytest.mark.parametrize(
    "cursor",
    [
        encode_cursor({"_id": {"$gt": ""}}),
        encode_cursor({"_id": ["cus_1", "cus_2"]}),
        raw_cursor(b'["cus_1"]'),
        raw_cursor(b'"cus_1"'),
        raw_cursor(b"42"),
        raw_cursor(b"{not json"),
        raw_cursor(b"\xff\xfe\xfa"),
        "!!not-base64!!",
        "a",
    ],
    ids=[
        "operator",
        "list-value",
        "list",
        "string",
        "number",
        "not-json",
        "not-utf8",
        "not-base64",
        "truncated",
    ],
)
def test_a_forged_or_garbled_cursor_is_invalid_input_on_the_cursor(cursor: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        decode_cursor(cursor)
    assert refused.value.extra["errors"] == [
        {"field": "cursor", "reason": "the cursor is not one this API returned"}
    ]


def docs(count: int) -> list[dict[str, Any]]:
    return [{"_id": f"cus_{i:02d}", "name": f"n{i}"} for i in range(count)]


def test_next_cursor_points_after_the_last_item_of_a_full_page() -> None:
    cursor = next_cursor(docs(4), 3, "_id")  # limit + 1 fetched: there is more
    assert cursor is not None
    assert decode_cursor(cursor) == {"_id": "cus_02"}


@pytest.mark.parametrize("fetched", [0, 2, 3])
def test_next_cursor_is_none_on_the_last_page(fetched: int) -> None:
    assert next_cursor(docs(fetched), 3, "_id") is None


def test_body_limits_match_exact_paths_and_one_segment_placeholders() -> None:
    from servicekit.limits import DEFAULT_MAX_BODY, BodyLimitMiddleware

    limits = BodyLimitMiddleware(
        None,  # type: ignore[arg-type]
        paths={"/tags/{tag_id}/batch": 5_000, "/imports/customers": 7_000},
    )
    assert limits.limit_for("/tags/vip/batch") == 5_000
    assert limits.limit_for("/tags/vip/extra/batch") == DEFAULT_MAX_BODY
    assert limits.limit_for("/imports/customers") == 7_000
    assert limits.limit_for("/customers") == DEFAULT_MAX_BODY
