"""Segments end to end: customer events published to Kafka as the customer service would; a
segment built as a job with a snapshot; members paged and exported; memberships following
events, tag changes and erasure in real time with their events; estimates and portraits from
the audience engine; templates; and bad input refused without changing anything."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from contracts.customer import CustomerErased, CustomerProfileChanged
from services.tagging.store.facts import FACTS
from tests.support.waiting import eventually
from tests.tagging.support import (
    Service,
    customer_id,
    events,
    events_settled,
    finished,
    publish,
    registered,
    spent,
    tag,
)

BIG_SPENDER = {"field": "total_amount", "op": "gte", "value": 30_000}
JOINED = "tagging.segment_member_joined.v1"
LEFT = "tagging.segment_member_left.v1"
BUILT = "tagging.segment_built.v1"


@pytest.fixture(scope="module")
def overrides() -> dict[str, Any]:
    return {"audience_poll_seconds": 0.2, "expiry_poll_seconds": 0.5}


async def customers(service: Service, tenant: str, *totals: int) -> list[str]:
    """Customers known to tagging with these totals spent, once their facts are stored."""
    ids = [customer_id() for _ in totals]
    for cid, total in zip(ids, totals, strict=True):
        await publish(service, tenant, registered(cid), spent(cid, total))
    # Registration stores facts with nothing spent: wait for each customer's own total.
    spent_as_sent = {
        "tenant": tenant,
        "$or": [
            {"customer_id": c, "stats.total_amount": t} for c, t in zip(ids, totals, strict=True)
        ],
    }
    await eventually(
        lambda: service.db[FACTS].count_documents(spent_as_sent), until=lambda n: n == len(ids)
    )
    return ids


async def new_segment(
    api: httpx.AsyncClient, rule: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    response = await api.post("/segments", json={"name": "segment", "rule": rule, **fields})
    assert response.status_code == 201, response.text
    segment: dict[str, Any] = response.json()
    job = await finished(api, segment["build_job_id"])
    assert job["state"] == "succeeded", job
    return segment


async def members(api: httpx.AsyncClient, segment_id: str) -> set[str]:
    found: set[str] = set()
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.get(f"/segments/{segment_id}/members", params=params)).json()
        found.update(m["customer_id"] for m in page["items"])
        if not (cursor := page.get("next_cursor")):
            return found


async def members_become(api: httpx.AsyncClient, segment_id: str, expected: set[str]) -> None:
    await eventually(lambda: members(api, segment_id), until=lambda m: m == expected, within=30)


async def test_a_build_stores_members_a_snapshot_and_announces_joins(
    service: Service, api: httpx.AsyncClient, tenant: str
) -> None:
    rich_a, poor, rich_b, rich_c = await customers(service, tenant, 50_000, 100, 30_000, 90_000)
    segment = await new_segment(api, BIG_SPENDER, description="spent at least ¥300")
    sid = segment["segment_id"]
    assert segment["summary"] and segment["time_based"] is False

    stored = (await api.get(f"/segments/{sid}")).json()
    build = stored["last_build"]
    assert build["count"] == 3 and build["joined"] == 3 and build["left"] == 0
    await members_become(api, sid, {rich_a, rich_b, rich_c})

    exported = (await api.get(f"/segments/{sid}/members.csv")).text
    rows = list(csv.reader(io.StringIO(exported)))
    assert rows[0] == ["customer_id", "joined_at"]
    assert sorted(r[0] for r in rows[1:]) == sorted([rich_a, rich_b, rich_c])

    snapshots = (await api.get(f"/segments/{sid}/snapshots")).json()
    assert [s["snapshot_id"] for s in snapshots] == [build["snapshot_id"]]
    snapshot_url = f"/segments/{sid}/snapshots/{build['snapshot_id']}/members"
    frozen = (await api.get(snapshot_url)).json()["items"]
    assert frozen == sorted([rich_a, rich_b, rich_c])
    frozen_csv = (await api.get(f"{snapshot_url}.csv")).text.splitlines()
    assert frozen_csv == ["customer_id", *sorted([rich_a, rich_b, rich_c])]

    joined = await events_settled(service, tenant, JOINED, 3)
    assert {e.data["customer_id"] for e in joined} == {rich_a, rich_b, rich_c}
    assert all(e.data["segment_id"] == sid for e in joined) and poor not in str(joined)
    built = await events_settled(service, tenant, BUILT, 1)
    assert built[0].subject == sid and built[0].data["member_count"] == 3

    # A rebuild with nothing changed takes a new snapshot and announces nothing.
    response = await api.post(f"/segments/{sid}/builds")
    assert response.status_code == 202 and response.headers["Location"].startswith("/jobs/")
    assert (await finished(api, response.json()["id"]))["state"] == "succeeded"
    assert len((await api.get(f"/segments/{sid}/snapshots")).json()) == 2
    await events_settled(service, tenant, BUILT, 2)
    assert len(await events(service, tenant, JOINED)) == 3


async def test_membership_follows_events_and_tags_in_real_time(
    service: Service, api: httpx.AsyncClient, tenant: str
) -> None:
    (cid,) = await customers(service, tenant, 100)
    await tag(api, "vip")
    big = (await new_segment(api, BIG_SPENDER))["segment_id"]
    vip_big = (
        await new_segment(
            api,
            {
                "type": "all",
                "children": [
                    {"type": "segment", "segment_id": big},
                    {"type": "tag", "tag_id": "vip"},
                ],
            },
        )
    )["segment_id"]
    assert await members(api, big) == set()

    await publish(service, tenant, spent(cid, 40_000))
    await members_become(api, big, {cid})
    assert await members(api, vip_big) == set()

    assert (await api.put(f"/customers/{cid}/tags/vip", json={})).status_code in (200, 201)
    await members_become(api, vip_big, {cid})

    await publish(service, tenant, spent(cid, 10))
    await members_become(api, big, set())
    await members_become(api, vip_big, set())

    await events_settled(service, tenant, LEFT, 2)  # published after the commit
    found = [
        (e.type, e.data["segment_id"])
        for e in await events(service, tenant)
        if e.type in (JOINED, LEFT)
    ]
    assert found == [(JOINED, big), (JOINED, vip_big), (LEFT, big), (LEFT, vip_big)]


async def test_an_erased_customer_leaves_every_segment(
    service: Service, api: httpx.AsyncClient, tenant: str
) -> None:
    (cid,) = await customers(service, tenant, 80_000)
    sid = (await new_segment(api, BIG_SPENDER))["segment_id"]
    await members_become(api, sid, {cid})
    await publish(service, tenant, CustomerErased(customer_id=cid, erased_at=datetime.now(UTC)))
    await members_become(api, sid, set())
    left = await events_settled(service, tenant, LEFT, 1)
    assert left[0].data["customer_id"] == cid


async def test_estimate_while_editing_and_a_portrait(
    service: Service, api: httpx.AsyncClient, tenant: str
) -> None:
    ids = await customers(service, tenant, 50_000, 100, 70_000)
    female = CustomerProfileChanged(
        customer_id=ids[0],
        changed_fields=["gender"],
        changed_by="ops",
        changed_at=datetime.now(UTC),
        attributes={"gender": "female"},
    )
    await publish(service, tenant, female)
    female_rich = {
        "type": "all",
        "children": [BIG_SPENDER, {"field": "gender", "op": "eq", "value": "female"}],
    }

    async def estimate() -> dict[str, Any]:
        response = await api.post("/segments/estimate", json={"rule": female_rich})
        assert response.status_code == 200, response.text
        return response.json()

    found = await eventually(estimate, until=lambda e: e["count"] == 1)
    assert found["customers"] == 3 and found["sample"] == [ids[0]]
    assert found["share"] == round(1 / 3, 4)

    sid = (await new_segment(api, BIG_SPENDER))["segment_id"]
    portrait = (await api.get(f"/segments/{sid}/portrait")).json()
    assert portrait["size"] == 2
    by_name = {
        d["name"]: {b["label"]: b["count"] for b in d["buckets"]} for d in portrait["dimensions"]
    }
    assert by_name["gender"]["female"] == 1 and by_name["gender"]["not known"] == 1
    assert by_name["order_count"]["2-4"] == 2
    assert by_name["net_amount"]["500-1,999"] == 2 and by_name["net_amount"]["100-499"] == 0
    assert (await api.get(f"/segments/{sid}/estimate")).json()["count"] == 2


async def test_segments_from_templates(
    service: Service, api: httpx.AsyncClient, tenant: str
) -> None:
    ids = await customers(service, tenant, 10_000, 90_000)
    listed = {t["template_id"] for t in (await api.get("/segment-templates")).json()}
    assert {"builtin.high_value", "builtin.at_risk", "builtin.repeat_buyers"} <= listed

    segment = await new_segment(
        api,
        None,
        template_id="builtin.high_value",
        parameters={"min_amount": 50_000},
    )
    assert segment["template_id"] == "builtin.high_value"
    assert segment["rule"]["children"][0]["value"] == 50_000
    await members_become(api, segment["segment_id"], {ids[1]})

    response = await api.post(
        "/segment-templates",
        json={
            "name": "Spent at least",
            "rule": {"field": "total_amount", "op": "gte", "value": "${amount}"},
            "parameters": [{"name": "amount", "label": "amount", "type": "money", "default": 1}],
        },
    )
    assert response.status_code == 201, response.text
    own = response.json()["template_id"]
    mine = await new_segment(api, None, template_id=own, parameters={"amount": 5_000})
    await members_become(api, mine["segment_id"], set(ids))


async def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


async def test_bad_segments_are_refused_and_change_nothing(
    service: Service, api: httpx.AsyncClient, tenant: str
) -> None:
    bad = {
        "type": "all",
        "children": [
            {"field": "shoe_colour", "op": "eq", "value": "red"},
            {"field": "total_amount", "op": "contains", "value": 1},
            {"type": "segment", "segment_id": "seg_missing"},
        ],
    }
    body = await problem(
        await api.post("/segments", json={"name": "x", "rule": bad}), 422, "invalid_rule"
    )
    assert [e["field"] for e in body["errors"]] == [
        "rule.children.0.field",
        "rule.children.1.op",
        "rule.children.2.segment_id",
    ]
    await problem(
        await api.post(
            "/segments/estimate", json={"rule": {"field": "gender", "op": "gt", "value": 1}}
        ),
        422,
        "invalid_rule",
    )
    await problem(await api.post("/segments", json={"name": "x"}), 422, "rule_or_template")
    await problem(
        await api.post(
            "/segments",
            json={"name": "x", "template_id": "builtin.at_risk", "parameters": {"quiet": 3}},
        ),
        422,
        "invalid_template_parameters",
    )
    await problem(
        await api.post("/segments", json={"name": "x", "template_id": "builtin.nope"}),
        404,
        "segment_template_not_found",
    )
    assert (await api.get("/segments")).json()["items"] == []

    # A cycle: B tests A, then A is changed to test B.
    a = (await new_segment(api, BIG_SPENDER))["segment_id"]
    b = (await new_segment(api, {"type": "segment", "segment_id": a}))["segment_id"]
    cycle = await problem(
        await api.patch(f"/segments/{a}", json={"rule": {"type": "segment", "segment_id": b}}),
        422,
        "invalid_rule",
    )
    assert "cycle" in cycle["detail"]
    assert (await api.get(f"/segments/{a}")).json()["version"] == 1
    await problem(await api.delete(f"/segments/{a}"), 409, "segment_in_use")
    await problem(await api.get(f"/segments/seg_{'0' * 32}"), 404, "segment_not_found")
    await problem(
        await api.get(f"/segments/{a}/snapshots/snp_nope/members"), 404, "snapshot_not_found"
    )

    assert (await api.delete(f"/segments/{b}")).status_code == 204
    assert (await api.delete(f"/segments/{a}")).status_code == 204
    assert (await api.get("/segments")).json()["items"] == []


async def test_builds_racing_live_events_end_in_the_right_membership(
    service: Service, api: httpx.AsyncClient, tenant: str
) -> None:
    """Forty customers cross the threshold back and forth while three builds run: the stored
    membership ends equal to the rule over the final facts, and each customer's joins and
    leaves alternate (nothing announced twice, nothing lost)."""
    ids = await customers(service, tenant, *[100] * 40)
    sid = (await new_segment(api, BIG_SPENDER))["segment_id"]
    rounds = 3
    final = {cid: 50_000 if (i + rounds - 1) % 2 == 0 else 10 for i, cid in enumerate(ids)}

    async def flip(i: int, cid: str) -> None:
        for r in range(rounds):
            await publish(service, tenant, spent(cid, 50_000 if (i + r) % 2 == 0 else 10))

    async def build() -> str:
        response = await api.post(f"/segments/{sid}/builds")
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    results = await asyncio.gather(
        *(flip(i, c) for i, c in enumerate(ids)), *(build() for _ in range(3))
    )
    for job_id in results[len(ids) :]:
        assert (await finished(api, str(job_id)))["state"] == "succeeded"
    expected = {cid for cid, total in final.items() if total >= 30_000}
    await members_become(api, sid, expected)

    async def announced() -> dict[str, list[str]]:
        per_customer: dict[str, list[str]] = {}
        for e in await events(service, tenant):
            if e.type in (JOINED, LEFT):
                per_customer.setdefault(e.data["customer_id"], []).append(e.type)
        return per_customer

    def settled(found: dict[str, list[str]]) -> bool:
        return all((found.get(c, [LEFT])[-1] == JOINED) == (c in expected) for c in ids)

    for cid, history in (await eventually(announced, until=settled, within=30)).items():
        assert history[0] == JOINED, (cid, history)
        assert all(a != b for a, b in itertools.pairwise(history)), (cid, history)
