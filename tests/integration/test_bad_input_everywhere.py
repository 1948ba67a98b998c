"""Every route of every service that takes a JSON body, called over real HTTP with what a
careless or hostile client sends: a body that is not JSON, a body of the wrong shape, and
MongoDB operators where strings belong. None may be a 500, every refusal is problem+json,
and nothing of the tenant is written."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from servicekit.errors import PROBLEM_JSON
from tests.support.platform import SERVICES
from tests.support.running import RunningService
from tests.support.servers import serve
from tests.support.settings import settings_for

pytestmark = pytest.mark.integration

TENANT = "t-hostile"
HEADERS = {"X-Tenant-Id": TENANT, "X-Actor-Id": "ops-1", "X-Actor-Roles": "admin"}
INJECTION = {"$gt": ""}


def json_operations(openapi: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(method, path with its parameters filled, body schema) of each JSON-body route."""
    for path, item in openapi["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                filled = path
                for parameter in operation.get("parameters", []):
                    if parameter["in"] == "path":
                        filled = filled.replace("{" + parameter["name"] + "}", "zz-unknown")
                yield method.upper(), filled, content["application/json"]["schema"]


def resolved(schema: dict[str, Any], openapi: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = openapi["components"]["schemas"][name]
    return schema


def poisoned(schema: dict[str, Any], openapi: dict[str, Any]) -> Any:
    """The body with an operator wherever the schema wants a string."""
    schema = resolved(schema, openapi)
    properties = schema.get("properties", {})
    if not properties:
        return INJECTION
    return {name: INJECTION for name in properties}


def hostile_bodies(schema: dict[str, Any], openapi: dict[str, Any]) -> list[tuple[str, Any]]:
    return [
        ("not json", b"{not json"),
        ("a list", b"[]"),
        ("a number", b"7"),
        ("operators", poisoned(schema, openapi)),
    ]


@pytest.fixture(scope="module")
async def running(infra: Any) -> AsyncIterator[dict[str, RunningService[Any]]]:
    running: dict[str, RunningService[Any]] = {}
    async with AsyncExitStack() as stack:
        for name, (factory, settings_cls) in SERVICES.items():
            settings = settings_for(settings_cls, infra, f"hostile{name}")
            app = factory(settings)
            running[name] = RunningService(
                await stack.enter_async_context(serve(app)), app, settings
            )
        yield running


async def tenant_documents(service: RunningService[Any]) -> dict[str, int]:
    """How many documents of the tenant each collection holds (its outbox too)."""
    counts = {}
    for name in await service.db.list_collection_names():
        counts[name] = await service.db[name].count_documents({"tenant": TENANT})
    return {name: n for name, n in counts.items() if n}


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_no_route_answers_hostile_bodies_with_a_500(
    running: dict[str, RunningService[Any]], service: str
) -> None:
    url = running[service].url
    async with httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=30) as http:
        openapi = (await http.get("/openapi.json")).json()
        failures: list[str] = []
        operations = list(json_operations(openapi))
        assert operations, "no route takes a JSON body"
        for method, path, schema in operations:
            for label, body in hostile_bodies(schema, openapi):
                content = body if isinstance(body, bytes) else None
                json_body = None if isinstance(body, bytes) else body
                response = await http.request(
                    method,
                    path,
                    content=content,
                    json=json_body,
                    headers={"Content-Type": "application/json"},
                )
                problem = response.headers.get("content-type") == PROBLEM_JSON
                if response.status_code >= 500 or (response.status_code >= 400 and not problem):
                    failures.append(
                        f"{method} {path} ({label}): {response.status_code} {response.text[:300]}"
                    )
        assert not failures, "\n".join(failures)
    assert await tenant_documents(running[service]) == {}
