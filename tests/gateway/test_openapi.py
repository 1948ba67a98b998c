"""The merged OpenAPI document and Swagger UI."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gateway.openapi import merge, namespaced
from tests.gateway.harness import running_gateway
from tests.gateway.upstreams import catalogue_service
from tests.support.servers import free_port, serve


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [op for item in document["paths"].values() for op in item.values()]


async def test_services_merge_under_their_domain_without_collisions() -> None:
    customer, _ = catalogue_service("customer")
    tagging, _ = catalogue_service("tagging")
    async with (
        serve(customer) as customer_url,
        serve(tagging) as tagging_url,
        running_gateway(customer_url=customer_url, tagging_url=tagging_url) as gateway,
    ):
        response = await gateway.get("/api/v1/openapi.json")

    assert response.status_code == 200
    document = response.json()
    services = {p for p in document["paths"] if not p.startswith("/api/v1/gateway/")}
    assert services == {"/api/v1/customer/items", "/api/v1/tagging/items"}
    assert "/api/v1/gateway/partners" in document["paths"]  # the gateway's own routes
    schemas = document["components"]["schemas"]
    for domain in ("customer", "tagging"):
        assert f"{domain}.Page" in schemas
        assert f"{domain}.HTTPValidationError" in schemas
    assert "Page" not in schemas
    list_items = document["paths"]["/api/v1/tagging/items"]["get"]
    page_schema = list_items["responses"]["200"]["content"]["application/json"]["schema"]
    assert page_schema == {"$ref": "#/components/schemas/tagging.Page"}
    for ref in refs(document):
        assert resolve(document, ref) is not None
    operation_ids = [op["operationId"] for op in operations(document)]
    assert len(operation_ids) == len(set(operation_ids))
    assert all(op.startswith(("customer_", "tagging_", "gateway_")) for op in operation_ids)
    assert len([op for op in operation_ids if not op.startswith("gateway_")]) == 4
    assert list_items["tags"] == ["tagging.items"]
    assert document["x-unavailable-services"] == ["coupon", "loyalty", "reach"]


async def test_a_service_document_is_fetched_once_while_fresh() -> None:
    customer, fetched = catalogue_service("customer")
    async with serve(customer) as url, running_gateway(customer_url=url) as gateway:
        first = await gateway.get("/api/v1/openapi.json")
        second = await gateway.get("/api/v1/openapi.json")

    assert first.json() == second.json()
    assert fetched["/openapi.json"] == 1


async def test_a_service_that_was_down_is_asked_again() -> None:
    port = free_port()
    async with running_gateway(coupon_url=f"http://127.0.0.1:{port}") as gateway:
        before = (await gateway.get("/api/v1/openapi.json")).json()
        coupon, _ = catalogue_service("coupon")
        async with serve(coupon, port=port):
            after = (await gateway.get("/api/v1/openapi.json")).json()

    assert "coupon" in before["x-unavailable-services"]
    assert "coupon" not in after["x-unavailable-services"]
    assert "/api/v1/coupon/items" in after["paths"]


async def test_swagger_ui_reads_the_merged_document() -> None:
    async with running_gateway() as gateway:
        response = await gateway.get("/api/v1/docs")

    assert response.status_code == 200
    assert "/api/v1/openapi.json" in response.text


def test_discriminator_mappings_and_nested_refs_follow_the_rename() -> None:
    service = {
        "paths": {
            "/rewards": {
                "parameters": [{"$ref": "#/components/parameters/Tenant"}],
                "post": {
                    "operationId": "grant",
                    "requestBody": {"$ref": "#/components/requestBodies/Grant"},
                    "responses": {"200": {"description": "ok"}},
                },
            },
            "/healthz": {"get": {"operationId": "healthz"}},
        },
        "components": {
            "schemas": {
                "Reward": {
                    "oneOf": [{"$ref": "#/components/schemas/Points"}],
                    "discriminator": {
                        "propertyName": "kind",
                        "mapping": {"points": "#/components/schemas/Points"},
                    },
                },
                "Points": {"type": "object"},
            },
            "parameters": {"Tenant": {"name": "X-Tenant-Id", "in": "header"}},
            "requestBodies": {"Grant": {"content": {}}},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "tags": [{"name": "rewards", "description": "Rewards"}],
    }

    result = namespaced("loyalty", service)

    item = result["paths"]["/api/v1/loyalty/rewards"]
    assert item["parameters"] == [{"$ref": "#/components/parameters/loyalty.Tenant"}]
    assert item["post"]["operationId"] == "loyalty_grant"
    assert item["post"]["tags"] == ["loyalty"]  # untagged: grouped under its service
    assert "/api/v1/loyalty/healthz" not in result["paths"]
    reward = result["components"]["schemas"]["loyalty.Reward"]
    assert reward["discriminator"]["mapping"] == {"points": "#/components/schemas/loyalty.Points"}
    assert result["components"]["securitySchemes"] == {
        "bearer": {"type": "http", "scheme": "bearer"}
    }
    assert result["tags"] == [{"name": "loyalty.rewards", "description": "Rewards"}]
    assert service["paths"]["/rewards"]["post"]["operationId"] == "grant"  # input untouched


def test_merge_keeps_the_gateways_own_operations() -> None:
    own = {
        "openapi": "3.1.0",
        "info": {"title": "API", "version": "1"},
        "paths": {"/api/v1/me": {"get": {"operationId": "me"}}},
    }
    service = {"paths": {"/items": {"get": {"operationId": "list"}}}}

    merged = merge(own, {"coupon": service}, ["reach"])

    assert set(merged["paths"]) == {"/api/v1/me", "/api/v1/coupon/items"}
    assert merged["x-unavailable-services"] == ["reach"]
    assert "x-unavailable-services" not in own
