"""Tag rules end to end: customer events published to Kafka as the customer service would,
the facts consumer evaluating rules, tags put on and taken off with their events, the sweep
turning a time-based rule true with time alone, and bad rules refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from contracts.customer import BehaviourRecorded, ConsentGranted
from services.tagging.service.rule_sweep import INTERVAL_STATE
from services.tagging.store.assignments import AssignmentStore
from services.tagging.store.facts import FACTS
from services.tagging.store.profiles import ProfileStore
from tests.support.waiting import eventually
from tests.tagging.support import (
    Service,
    customer_id,
    events,
    events_settled,
    publish,
    registered,
    spent,
    tag,
)

HIGH_VALUE = {"field": "total_amount", "op": "gte", "value": 500_000}
AT_RISK = {"field": "last_purchase_at", "op": "not_within_last_days", "value": 180}
YOUNG_PARENT = {
    "type": "behaviour",
    "kind": "product_view",
    "target": {"key": "category", "value": "baby"},
    "count": 3,
    "within_days": 30,
}
SMS = {"field": "consent.sms.marketing", "op": "is_true"}


@pytest.fixture(autouse=True)
def short_sweep(service: Service) -> None:
    service.runtime.state[INTERVAL_STATE] = 0.3


async def new_rule(api: httpx.AsyncClient, tag_id: str, rule: dict[str, Any]) -> dict[str, Any]:
    response = await api.post("/tag-rules", json={"name": tag_id, "tag_id": tag_id, "rule": rule})
    assert response.status_code == 201, response.text
    return response.json()


async def tags_of(service: Service, tenant: str, cid: str) -> dict[str, str]:
    found = await AssignmentStore(service.db).of_customer(tenant, cid)
    return {a.tag_id: str(a.source) for a in found}


async def has_tags(service: Service, tenant: str, cid: str, expected: dict[str, str]) -> None:
    await eventually(lambda: tags_of(service, tenant, cid), until=lambda t: t == expected)


async def test_spending_puts_high_value_on_and_a_refund_takes_it_off(
    service: Service, api: httpx.AsyncClient, tenant: str
) -> None:
    await tag(api, "high_value")
    rule = await new_rule(api, "high_value", HIGH_VALUE)
    assert rule["time_based"] is False and rule["state"] == "active"
    cid = customer_id()
    await publish(service, tenant, registered(cid), spent(cid, 500_000))
    await has_tags(service, tenant, cid, {"high_value": "rule"})
    await publish(service, tenant, spent(cid, 100))
    await has_tags(service, tenant, cid, {})
    # The relay publishes after the commit: wait for the last event, then read them all.
    await events_settled(service, tenant, "tagging.tag_removed.v1", 1)
    found = await events(service, tenant)
    assert [(e.type, e.data["tag_id"]) for e in found] == [
        ("tagging.tag_assigned.v1", "high_value"),
        ("tagging.tag_removed.v1", "high_value"),
    ]
    assert found[0].data["source"] == "rule"
    assert found[0].data["assigned_by"] == f"rule:{rule['rule_id']}"
    assert found[1].data["reason"] == "rule_no_longer_holds"


async def test_a_manual_tag_is_untouched_when_the_rule_does_not_hold(
    service: Service, api: httpx.AsyncClient, tenant: str
) -> None:
    await tag(api, "high_value")
    await new_rule(api, "high_value", HIGH_VALUE)
    cid = customer_id()
    await publish(service, tenant, registered(cid))
    await eventually(lambda: service.db[FACTS].find_one({"customer_id": cid}))
    # Manual tagging knows customers from the profile read model, another consumer group.
    await eventually(lambda: ProfileStore(service.db).profile(tenant, cid))
    response = await api.put(f"/customers/{cid}/tags/high_value", json={})
    assert response.status_code == 200, response.text
    await publish(service, tenant, spent(cid, 10), spent(cid, 600_000), spent(cid, 1))
    await eventually(
        lambda: service.db[FACTS].find_one({"customer_id": cid, "stats.total_amount": 1})
    )
    assert await tags_of(service, tenant, cid) == {"high_value": "manual"}


async def test_behaviour_and_consent_rules(
    service: Service, api: httpx.AsyncClient, tenant: str
) -> None:
    await tag(api, "young_parent")
    await tag(api, "sms_reachable")
    await new_rule(api, "young_parent", YOUNG_PARENT)
    await new_rule(api, "sms_reachable", SMS)
    cid = customer_id()
    views = [
        BehaviourRecorded(
            customer_id=cid,
            behaviour_id=f"b{i}",
            kind="product_view",
            occurred_at=datetime.now(UTC),
            target={"category": "baby"},
        )
        for i in range(3)
    ]
    await publish(service, tenant, registered(cid), *views[:2])
    await eventually(
        lambda: service.db[FACTS].find_one({"customer_id": cid, "behaviour.days": {"$ne": {}}})
    )
    consent = ConsentGranted(
        customer_id=cid,
        channel="sms",
        purpose="marketing",
        source="app",
        granted_at=datetime.now(UTC),
    )
    await publish(service, tenant, views[2], consent)
    await has_tags(service, tenant, cid, {"young_parent": "rule", "sms_reachable": "rule"})


async def test_the_sweep_tags_a_customer_whose_last_purchase_grew_old(
    service: Service, api: httpx.AsyncClient, tenant: str
) -> None:
    await tag(api, "at_risk")
    rule = await new_rule(api, "at_risk", AT_RISK)
    assert rule["time_based"] is True
    cid = customer_id()
    await publish(service, tenant, registered(cid), spent(cid, 100))
    await eventually(
        lambda: service.db[FACTS].find_one({"customer_id": cid, "stats.total_amount": 100})
    )
    assert await tags_of(service, tenant, cid) == {}
    # No event says time passed: only the sweep can see it.
    old = datetime.now(UTC) - timedelta(days=200)
    await service.db[FACTS].update_one(
        {"customer_id": cid}, {"$set": {"stats.last_purchase_at": old}}
    )
    await has_tags(service, tenant, cid, {"at_risk": "rule"})
    await publish(service, tenant, spent(cid, 200))
    await has_tags(service, tenant, cid, {})


async def test_a_new_rule_reaches_customers_it_already_holds_for_and_preview_counts_them(
    service: Service, api: httpx.AsyncClient, tenant: str
) -> None:
    await tag(api, "high_value")
    rich, poor = customer_id(), customer_id()
    await publish(service, tenant, spent(rich, 900_000), spent(poor, 5))
    await eventually(
        lambda: service.db[FACTS].count_documents({"tenant": tenant}), until=lambda n: n == 2
    )
    rule = await new_rule(api, "high_value", HIGH_VALUE)
    await has_tags(service, tenant, rich, {"high_value": "rule"})
    preview = (await api.post(f"/tag-rules/{rule['rule_id']}/preview")).json()
    assert preview == {"matching": 1, "scanned": 2, "sample": [rich]}


async def test_rules_are_listed_changed_paused_resumed_and_deleted(
    api: httpx.AsyncClient,
) -> None:
    await tag(api, "high_value")
    rule = await new_rule(api, "high_value", HIGH_VALUE)
    path = f"/tag-rules/{rule['rule_id']}"
    changed = await api.patch(path, json={"rule": AT_RISK, "priority": 5})
    assert changed.status_code == 200, changed.text
    assert changed.json()["time_based"] is True and changed.json()["version"] == 2
    assert (await api.post(f"{path}/pause")).json()["state"] == "paused"
    assert (await api.post(f"{path}/resume")).json()["state"] == "active"
    listed = (await api.get("/tag-rules")).json()
    assert [r["rule_id"] for r in listed["items"]] == [rule["rule_id"]]
    assert (await api.delete(path)).status_code == 204
    assert (await api.get(path)).status_code == 404


async def test_a_bad_rule_is_refused_with_every_problem_and_its_path(
    api: httpx.AsyncClient,
) -> None:
    await tag(api, "high_value")
    bad = {
        "type": "all",
        "children": [
            {"field": "no_such_field", "op": "eq", "value": 1},
            {"field": "total_amount", "op": "contains", "value": 1},
            {"type": "tag", "tag_id": "missing"},
        ],
    }
    response = await api.post("/tag-rules", json={"name": "x", "tag_id": "high_value", "rule": bad})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    fields = [e["field"] for e in response.json()["errors"]]
    assert fields == ["rule.children.0.field", "rule.children.1.op", "rule.children.2.tag_id"]
    injected = {"field": "gender", "op": "eq", "value": {"$gt": ""}}
    response = await api.post(
        "/tag-rules", json={"name": "x", "tag_id": "high_value", "rule": injected}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"].startswith("rule.value")
    assert (await api.get("/tag-rules")).json()["items"] == []
