"""Tag metadata end to end: categories, tags, validation, archive, templates."""

from __future__ import annotations

import httpx
import pytest

from services.tagging.store.tags import TAGS
from tests.tagging.support import Service, category, known_customers, tag


async def test_a_category_nests_two_levels_at_most(api: httpx.AsyncClient) -> None:
    await category(api, "family")
    child = {"category_id": "stage", "name": "Stage", "parent": "family"}
    assert (await api.post("/tag-categories", json=child)).status_code == 201
    grandchild = {"category_id": "sub-stage", "name": "Sub", "parent": "stage"}
    response = await api.post("/tag-categories", json=grandchild)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "parent"
    listed = (await api.get("/tag-categories")).json()
    assert [c["category_id"] for c in listed] == ["family", "stage"]


async def test_a_tag_is_created_read_updated_and_listed(api: httpx.AsyncClient) -> None:
    created = await tag(
        api,
        "level",
        value_kind="enum",
        options=["gold", "silver"],
        kind="business_tag",
        expiry={"kind": "after_days", "days": 30},
        owner="adv-1",
        scope=["store-1"],
    )
    assert created["state"] == "active" and created["expiry"]["days"] == 30
    body = {k: created[k] for k in ("name", "category", "value_kind", "kind")}
    body["options"] = ["gold", "silver", "bronze"]
    response = await api.put("/tags/level", json=body)
    assert response.status_code == 200, response.text
    assert (await api.get("/tags/level")).json()["options"] == ["gold", "silver", "bronze"]
    assert [t["tag_id"] for t in (await api.get("/tags")).json()] == ["level"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tag_id": "Bad Slug!", "name": "x", "category": "value"}, "tag_id"),
        ({"tag_id": "lvl", "name": "x", "category": "value", "value_kind": "enum"}, "options"),
        ({"tag_id": "lvl", "name": "x", "category": "nowhere"}, "category"),
        ({"tag_id": {"$gt": ""}, "name": "x", "category": "value"}, "tag_id"),
        ({"tag_id": "lvl", "name": "x", "category": "value", "colour": "red"}, "colour"),
        ({"tag_id": "lvl", "name": "x", "category": "value", "min": 1}, "value_kind"),
    ],
)
async def test_bad_tags_are_refused_and_nothing_is_written(
    api: httpx.AsyncClient, service: Service, tenant: str, body: dict[str, object], field: str
) -> None:
    await category(api)
    response = await api.post("/tags", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in [e["field"] for e in response.json()["errors"]]
    assert await service.db[TAGS].count_documents({"tenant": tenant}) == 0


async def test_the_value_kind_of_a_tag_in_use_cannot_change(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    await tag(api, "vip")
    [customer] = await known_customers(service, tenant)
    assert (await api.put(f"/customers/{customer}/tags/vip", json={})).status_code == 200
    body = {"name": "VIP", "category": "value", "value_kind": "number"}
    response = await api.put("/tags/vip", json=body)
    assert response.status_code == 409
    assert response.json()["code"] == "tag_in_use"


async def test_an_archived_tag_keeps_its_assignments_and_refuses_new_ones(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    await tag(api, "vip")
    first, second = await known_customers(service, tenant, 2)
    assert (await api.put(f"/customers/{first}/tags/vip", json={})).status_code == 200
    assert (await api.post("/tags/vip/archive")).json()["state"] == "archived"
    refused = await api.put(f"/customers/{second}/tags/vip", json={})
    assert refused.status_code == 409 and refused.json()["code"] == "tag_archived"
    kept = (await api.get(f"/customers/{first}/tags")).json()
    assert [a["tag_id"] for a in kept] == ["vip"]
    assert (await api.get(f"/customers/{second}/tags")).json() == []


async def test_a_template_creates_its_tags_once(api: httpx.AsyncClient) -> None:
    templates = (await api.get("/tag-templates")).json()
    assert {t["template_id"] for t in templates} == {"apparel-retail", "maternal-baby"}
    first = (await api.post("/tag-templates/maternal-baby/apply")).json()
    assert first["skipped"] == [] and "tag:baby-stage" in first["created"]
    second = (await api.post("/tag-templates/maternal-baby/apply")).json()
    assert second["created"] == [] and sorted(second["skipped"]) == sorted(first["created"])
    stage = (await api.get("/tags/baby-stage")).json()
    assert stage["kind"] == "attribute_label" and stage["value_kind"] == "enum"
    missing = await api.post("/tag-templates/no-such/apply")
    assert missing.status_code == 404
