"""Tagging customers end to end: manual tag and untag, concurrency, batch jobs, expiry, the
interface tag rules use, and the events on the tagging topic."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from contracts.tagging import TagAssigned, TagRemoved
from servicekit.clock import utcnow
from servicekit.unit_of_work import Tx
from services.tagging.domain.tags import RULE_NO_LONGER_HOLDS
from services.tagging.service.assignments import assign_tag, remove_tag
from services.tagging.service.expiry import sweep_expired
from services.tagging.store.assignments import ASSIGNMENTS, HISTORY, AssignmentStore
from tests.support.waiting import eventually
from tests.tagging.support import (
    Service,
    customer_id,
    events_settled,
    finished,
    known_customers,
    tag,
)

ASSIGNED = TagAssigned.type
REMOVED = TagRemoved.type


async def test_a_manual_tag_is_put_on_listed_and_taken_off(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    await tag(api, "level", value_kind="enum", options=["gold", "silver"])
    [customer] = await known_customers(service, tenant)
    put = await api.put(f"/customers/{customer}/tags/level", json={"value": "gold"})
    assert put.status_code == 200, put.text
    assert put.json()["source"] == "manual" and put.json()["assigned_by"] == "ops-1"
    [listed] = (await api.get(f"/customers/{customer}/tags")).json()
    assert listed["value"] == "gold" and listed["assigned_at"]
    assert (await api.get(f"/customers/{customer}/profile")).json()["tags"] == ["level"]
    assert (await api.delete(f"/customers/{customer}/tags/level")).status_code == 204
    assert (await api.get(f"/customers/{customer}/profile")).json()["tags"] == []
    assert (await api.get(f"/customers/{customer}/tags")).json() == []
    assert (await api.delete(f"/customers/{customer}/tags/level")).status_code == 404
    [assigned] = await events_settled(service, tenant, ASSIGNED, 1)
    [removed] = await events_settled(service, tenant, REMOVED, 1)
    assert assigned.data["value"] == "gold" and assigned.subject == customer
    assert removed.data["reason"] == "untagged" and removed.data["removed_by"] == "ops-1"
    history = await AssignmentStore(service.db).history(tenant, customer)
    assert [h["action"] for h in history] == ["assigned", "removed"]


async def test_the_expiry_defaults_from_the_tag_policy(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    await tag(api, "trial", expiry={"kind": "after_days", "days": 7})
    [customer] = await known_customers(service, tenant)
    put = (await api.put(f"/customers/{customer}/tags/trial", json={})).json()
    expires = datetime.fromisoformat(put["expires_at"])
    assert timedelta(days=6, hours=23) < expires - datetime.now(UTC) <= timedelta(days=7)


@pytest.mark.parametrize(
    ("tag_id", "body", "status", "field"),
    [
        ("score", {"value": "high"}, 422, "value"),
        ("score", {"value": 1000}, 422, "value"),
        ("score", {"value": {"$gt": 0}}, 422, "value"),
        ("vip", {"value": "x"}, 422, "value"),
        ("vip", {"expires_at": "2001-01-01T00:00:00Z"}, 422, "expires_at"),
        ("vip", {"expires_at": "2031-01-01T00:00:00"}, 422, "expires_at"),
        ("vip", {"colour": "red"}, 422, "colour"),
        ("nope", {}, 422, "tag_id"),
    ],
)
async def test_bad_tagging_writes_nothing(
    api: httpx.AsyncClient,
    service: Service,
    tenant: str,
    tag_id: str,
    body: dict[str, object],
    status: int,
    field: str,
) -> None:
    await tag(api, "vip")
    await tag(api, "score", value_kind="number", min=0, max=100)
    [customer] = await known_customers(service, tenant)
    response = await api.put(f"/customers/{customer}/tags/{tag_id}", json=body)
    assert response.status_code == status, response.text
    assert field in [e["field"].split(".")[0] for e in response.json()["errors"]]
    assert await service.db[ASSIGNMENTS].count_documents({"tenant": tenant}) == 0
    assert await service.db[HISTORY].count_documents({"tenant": tenant}) == 0


async def test_an_unknown_customer_or_a_bad_id_is_refused(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    await tag(api, "vip")
    unknown = await api.put(f"/customers/{customer_id()}/tags/vip", json={})
    assert unknown.status_code == 404 and unknown.json()["code"] == "customer_not_found"
    bad = await api.put("/customers/cus_$gt/tags/vip", json={})
    assert bad.status_code == 422
    assert await service.db[ASSIGNMENTS].count_documents({"tenant": tenant}) == 0


async def test_twenty_concurrent_assigns_make_one_assignment_and_one_event(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    await tag(api, "vip")
    [customer] = await known_customers(service, tenant)
    responses = await asyncio.gather(
        *(api.put(f"/customers/{customer}/tags/vip", json={}) for _ in range(20))
    )
    assert {r.status_code for r in responses} == {200}
    assert await service.db[ASSIGNMENTS].count_documents({"tenant": tenant}) == 1
    assert len(await events_settled(service, tenant, ASSIGNED, 1)) == 1
    assert await service.db[HISTORY].count_documents({"tenant": tenant}) == 1


async def test_a_tag_lists_its_customers_page_by_page(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    await tag(api, "vip")
    customers = await known_customers(service, tenant, 5)
    for customer in customers:
        assert (await api.put(f"/customers/{customer}/tags/vip", json={})).status_code == 200
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/tags/vip/customers", params=params)).json()
        seen += [a["customer_id"] for a in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == sorted(customers)


async def test_a_rule_removes_only_what_a_rule_put_on(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    await tag(api, "vip")
    by_rule, by_hand = await known_customers(service, tenant, 2)
    assert (await api.put(f"/customers/{by_hand}/tags/vip", json={})).status_code == 200

    async def rule_assigns(tx: Tx) -> bool:
        return await assign_tag(
            tx,
            tenant=tenant,
            customer_id=by_rule,
            tag_id="vip",
            value=None,
            source="rule",
            by="rule:vip",
        )

    async def rule_removes(tx: Tx, customer: str) -> bool:
        return await remove_tag(
            tx,
            tenant=tenant,
            customer_id=customer,
            tag_id="vip",
            reason=RULE_NO_LONGER_HOLDS,
            by="rule:vip",
        )

    uow = service.runtime.uow
    assert await uow.run(rule_assigns) is True
    assert await uow.run(rule_assigns) is False
    [assignment] = await AssignmentStore(service.db).of_customer(tenant, by_rule)
    assert assignment.source == "rule"
    assert await uow.run(lambda tx: rule_removes(tx, by_hand)) is False
    assert await uow.run(lambda tx: rule_removes(tx, by_rule)) is True
    assert await AssignmentStore(service.db).of_customer(tenant, by_rule) == []
    assert len(await AssignmentStore(service.db).of_customer(tenant, by_hand)) == 1
    [removed] = await events_settled(service, tenant, REMOVED, 1)
    assert removed.data["reason"] == RULE_NO_LONGER_HOLDS


async def test_a_batch_of_two_thousand_runs_as_a_job_with_errors(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    await tag(api, "level", value_kind="enum", options=["gold"])
    customers = await known_customers(service, tenant, 1990)
    strangers = [customer_id() for _ in range(10)]
    body = {"customer_ids": customers + strangers, "value": "gold", "action": "assign"}
    response = await api.post("/tags/level/batch", json=body)
    assert response.status_code == 202, response.text
    job = await finished(api, response.json()["id"])
    assert job["state"] == "succeeded", job
    assert (job["total"], job["processed"], job["succeeded"], job["failed"]) == (
        2000,
        2000,
        1990,
        10,
    )
    assert sorted(e["item"] for e in job["errors"]) == sorted(strangers)
    assert await service.db[ASSIGNMENTS].count_documents({"tenant": tenant}) == 1990
    assigned = await events_settled(service, tenant, ASSIGNED, 1990)
    assert {e.data["source"] for e in assigned} == {"batch"} and len(assigned) == 1990

    remove = {"customer_ids": customers[:300], "action": "remove"}
    job = await finished(api, (await api.post("/tags/level/batch", json=remove)).json()["id"])
    assert job["state"] == "succeeded" and job["result"] == {"changed": 300}
    assert await service.db[ASSIGNMENTS].count_documents({"tenant": tenant}) == 1690


async def test_a_batch_is_refused_before_it_starts_when_its_input_is_bad(
    api: httpx.AsyncClient, service: Service
) -> None:
    await tag(api, "level", value_kind="enum", options=["gold"])
    wrong = {"customer_ids": [customer_id()], "value": "platinum"}
    assert (await api.post("/tags/level/batch", json=wrong)).status_code == 422
    unknown = await api.post("/tags/nope/batch", json={"customer_ids": [customer_id()]})
    assert unknown.status_code == 422
    too_many = {"customer_ids": [customer_id()] * 100_001}
    assert (await api.post("/tags/level/batch", json=too_many)).status_code == 422
    jobs = (await api.get("/jobs")).json()["items"]
    assert jobs == []


async def test_expired_tags_are_swept_exactly_once_by_competing_sweepers(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    await tag(api, "flash")
    customers = await known_customers(service, tenant, 12)
    soon = (utcnow() + timedelta(seconds=2)).isoformat()
    for customer in customers:
        put = await api.put(f"/customers/{customer}/tags/flash", json={"expires_at": soon})
        assert put.status_code == 200, put.text

    async def gone() -> int:
        return await service.db[ASSIGNMENTS].count_documents({"tenant": tenant})

    # Two extra sweepers race the service's own worker until everything is gone.
    async def sweeper() -> None:
        while await gone():
            await sweep_expired(service.runtime.uow, limit=5)

    await asyncio.gather(sweeper(), sweeper())
    await eventually(gone, until=lambda left: left == 0)
    removed = await events_settled(service, tenant, REMOVED, 12)
    assert len(removed) == 12
    assert sorted(e.subject for e in removed) == sorted(customers)
    assert {e.data["reason"] for e in removed} == {"expired"}
    assert (await api.get(f"/customers/{customers[0]}/tags")).json() == []
