"""Duplicate detection, merge and unmerge over real HTTP on the real embedded store and
broker: everything of the duplicate moves to the survivor and back, refusals write nothing,
concurrent merges touching one customer leave both consistent, and events are published."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from servicekit.errors import PROBLEM_JSON
from tests.customer.support import (
    ADMIN,
    Client,
    Service,
    get,
    merge,
    record_activity,
    register,
)
from tests.support.events import published
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
#: Fields that change on any write: compared apart.
VOLATILE = ("version", "updated_at")


@pytest.fixture
def actor() -> dict[str, str]:
    return ADMIN


def stable(customer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in customer.items() if k not in VOLATILE}


async def holdings(api: httpx.AsyncClient, customer_id: str) -> dict[str, Any]:
    """What the customer holds, as the other APIs answer it."""
    behaviour = await get(api, f"/customers/{customer_id}/behaviour")
    orders = await get(api, f"/customers/{customer_id}/orders")
    follow_ups = await get(api, f"/customers/{customer_id}/follow-ups")
    consents = await get(api, f"/customers/{customer_id}/consents")
    stats = await get(api, f"/customers/{customer_id}/purchase-stats")
    return {
        "behaviour": sorted(b["behaviour_id"] for b in behaviour["items"]),
        "orders": sorted(o["order_id"] for o in orders["items"]),
        "follow_ups": sorted(f["id"] for f in follow_ups["items"]),
        "consents": consents,
        "stats": {k: stats[k] for k in ("order_count", "total_paid", "first_purchase_at")},
    }


# --- duplicates ----------------------------------------------------------------------------


async def test_duplicates_are_found_by_mobile_email_and_union_id(api: httpx.AsyncClient) -> None:
    union = {"kind": "union_id", "value": f"u-{uuid.uuid4().hex[:8]}"}
    me = await register(api, mobile="13800000001", email="li@example.com", identities=[union])
    by_email = await register(api, email="li@example.com")
    unrelated = await register(api, email="other@example.com")
    # A mobile and a union id are claimed by one active customer only, so the API cannot
    # make two share one; those reasons are covered by the unit tests of the rule.
    found = await get(api, f"/customers/{me['id']}/duplicates")
    reasons = {d["customer"]["id"]: d["reasons"] for d in found}
    assert reasons == {by_email["id"]: ["email"]}
    assert unrelated["id"] not in reasons

    await merge(api, by_email["id"], unrelated["id"])  # an inactive one is no candidate
    assert await get(api, f"/customers/{unrelated['id']}/duplicates") == []


# --- merge and undo --------------------------------------------------------------------------


async def test_merge_moves_everything_and_undo_restores_both(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    survivor = await register(api, "Li Lei", mobile="13800000002", custom_fields={})
    duplicate = await register(
        api,
        "Lei Li",
        email="lei@example.com",
        birthday="1990-02-03",
        address={"city": "Hangzhou", "street": "1 West Lake Road"},
        identities=[{"kind": "union_id", "value": f"u-{survivor['id'][-8:]}"}],
        owner_id="adv-9",
    )
    await record_activity(api, survivor["id"], "s")
    await record_activity(api, duplicate["id"], "d")
    before = {
        "survivor": await get(api, f"/customers/{survivor['id']}"),
        "duplicate": await get(api, f"/customers/{duplicate['id']}"),
    }
    held = {
        "survivor": await holdings(api, survivor["id"]),
        "duplicate": await holdings(api, duplicate["id"]),
    }

    response = await merge(api, survivor["id"], duplicate["id"])
    assert response.status_code == 201, response.text
    record = response.json()
    assert set(record["gained_fields"]) == {"email", "birthday", "address"}
    assert len(record["moved"]["behaviour"]) == 2 and record["moved"]["orders"] == ["ord-d"]

    merged_view = await get(api, f"/customers/{duplicate['id']}")
    assert merged_view["status"] == "merged" and merged_view["merged_into"] == survivor["id"]
    now_survivor = await get(api, f"/customers/{survivor['id']}")
    assert now_survivor["email"] == "lei@example.com"
    assert now_survivor["mobile"] == "+8613800000002"
    assert any(h["to_owner"] == "adv-9" for h in now_survivor["owner_history"])
    union = duplicate["identities"][0]
    owner = await get(api, f"/customers/by-identity/{union['kind']}/{union['value']}")
    assert owner["id"] == survivor["id"]  # the claim moved

    merged_holdings = await holdings(api, survivor["id"])
    assert merged_holdings["orders"] == ["ord-d", "ord-s"]
    assert len(merged_holdings["behaviour"]) == 4 and len(merged_holdings["follow_ups"]) == 2
    assert merged_holdings["stats"]["order_count"] == 2
    assert merged_holdings["stats"]["total_paid"] == 2000
    assert (await holdings(api, duplicate["id"]))["orders"] == []
    survivor_log = await get(api, f"/customers/{survivor['id']}/change-log")
    assert survivor_log["items"][0]["reason"] == f"merged {duplicate['id']} in"
    duplicate_log = await get(api, f"/customers/{duplicate['id']}/change-log")
    assert duplicate_log["items"][0]["reason"] == f"merged into {survivor['id']}"
    listed = await get(api, f"/customers/{duplicate['id']}/merges")
    assert [m["id"] for m in listed] == [record["id"]]
    assert (await get(api, f"/merges/{record['id']}"))["merged_before"][
        "email"
    ] == "lei@example.com"

    undone = await api.post(f"/merges/{record['id']}/undo")
    assert undone.status_code == 200, undone.text
    assert undone.json()["status"] == "undone"

    for who, customer in (("survivor", survivor), ("duplicate", duplicate)):
        after = await get(api, f"/customers/{customer['id']}")
        assert stable(after) == stable(before[who]), who
        assert await holdings(api, customer["id"]) == held[who], who
    owner = await get(api, f"/customers/by-identity/{union['kind']}/{union['value']}")
    assert owner["id"] == duplicate["id"]

    again = await api.post(f"/merges/{record['id']}/undo")
    assert again.status_code == 409 and again.json()["code"] == "merge_undone"

    envelopes = await eventually(
        lambda: published(service.settings.kafka_bootstrap_servers, tenant=tenant),
        until=lambda es: any(e.type == "customer.unmerged.v1" for e in es),
    )
    by_type = {e.type: e for e in envelopes}
    merged_event = by_type["customer.merged.v1"]
    assert merged_event.subject == survivor["id"]
    assert merged_event.data["merged_id"] == duplicate["id"]
    assert merged_event.data["merge_id"] == record["id"]
    assert by_type["customer.unmerged.v1"].data["restored_id"] == duplicate["id"]


async def test_a_newer_withdrawal_of_the_duplicate_wins_and_undo_takes_it_back(
    api: httpx.AsyncClient,
) -> None:
    survivor, duplicate = await register(api), await register(api)
    path = "consents/sms/marketing"
    for customer, granted in ((survivor, True), (duplicate, False)):
        body = {"granted": granted, "source": "store_form"}
        assert (await api.put(f"/customers/{customer['id']}/{path}", json=body)).status_code == 200

    record = (await merge(api, survivor["id"], duplicate["id"])).json()
    assert record["moved"]["consents_overridden"] == ["sms/marketing"]
    assert (await get(api, f"/customers/{survivor['id']}/{path}"))["allowed"] is False

    assert (await api.post(f"/merges/{record['id']}/undo")).status_code == 200
    assert (await get(api, f"/customers/{survivor['id']}/{path}"))["allowed"] is True
    assert (await get(api, f"/customers/{duplicate['id']}/{path}"))["allowed"] is False


# --- refusals --------------------------------------------------------------------------------


async def test_refused_merges_answer_a_problem_and_write_nothing(
    api: httpx.AsyncClient, service: Service, tenant: str, client: Client
) -> None:
    a, b = await register(api), await register(api)
    async with client(ADMIN, tenant=f"{tenant}x") as other:
        other_tenant = await register(other)
    unknown = f"cus_{uuid.uuid4().hex}"
    cases = [
        ({"merged_id": a["id"], "reason": "x"}, 409, "same_customer"),
        ({"merged_id": unknown, "reason": "x"}, 404, "customer_not_found"),
        ({"merged_id": other_tenant["id"], "reason": "x"}, 404, "customer_not_found"),
        ({"merged_id": {"$ne": None}, "reason": "x"}, 422, "validation_failed"),
        ({"merged_id": b["id"], "reason": {"$gt": ""}}, 422, "validation_failed"),
        ({"merged_id": b["id"], "reason": "x", "force": True}, 422, "validation_failed"),
    ]
    for body, status, code in cases:
        response = await api.post(f"/customers/{a['id']}/merge", json=body)
        assert response.status_code == status, (body, response.text)
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.json()["code"] == code
    assert await get(api, f"/customers/{a['id']}/merges") == []
    assert (await get(api, f"/customers/{b['id']}"))["status"] == "active"

    assert (await api.post(f"/merges/mrg_{uuid.uuid4().hex}/undo")).status_code == 404
    assert (await api.get("/merges/not-a-merge")).status_code == 422

    assert (await merge(api, a["id"], b["id"])).status_code == 201
    for survivor, merged, code in ((a, b, "customer_merged"), (b, a, "customer_merged")):
        response = await merge(api, survivor["id"], merged["id"])
        assert response.status_code == 409 and response.json()["code"] == code
    patch = await api.patch(f"/customers/{b['id']}", json={"display_name": "x"})
    assert patch.status_code == 409


async def test_undo_is_refused_after_the_window_or_once_the_survivor_was_merged_again(
    api: httpx.AsyncClient, service: Service
) -> None:
    a, b, c = await register(api), await register(api), await register(api)
    first = (await merge(api, a["id"], b["id"])).json()
    assert (await merge(api, c["id"], a["id"])).status_code == 201
    response = await api.post(f"/merges/{first['id']}/undo")
    assert response.status_code == 409 and response.json()["code"] == "survivor_merged"

    d, e = await register(api), await register(api)
    late = (await merge(api, d["id"], e["id"])).json()
    past = datetime.now(UTC) - timedelta(days=1)
    await service.db["customer_merges"].update_one(
        {"_id": late["id"]}, {"$set": {"undo_until": past}}
    )
    response = await api.post(f"/merges/{late['id']}/undo")
    assert response.status_code == 409 and response.json()["code"] == "undo_window_passed"
    assert (await get(api, f"/customers/{e['id']}"))["status"] == "merged"


# --- concurrency -----------------------------------------------------------------------------


async def test_concurrent_merges_touching_one_customer_leave_both_consistent(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    people = [
        await register(
            api,
            mobile=f"1390000{n:04d}",
            identities=[{"kind": "app_user_id", "value": f"{tenant}-{n}"}],
        )
        for n in range(4)
    ]
    ids = [p["id"] for p in people]
    a, b, c, d = ids
    # A<-B twice, B<-C, B<-A, C<-D, D<-A: every pair shares a customer with another.
    pairs = [(a, b), (a, b), (b, c), (b, a), (c, d), (d, a)]
    responses = await asyncio.gather(*(merge(api, s, m) for s, m in pairs))
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {201, 409}, [r.text for r in responses]
    assert 201 in statuses
    for response in responses:
        if response.status_code == 409:
            assert response.headers["content-type"] == PROBLEM_JSON

    customers = {i: await get(api, f"/customers/{i}") for i in ids}
    done = [r.json() for r in responses if r.status_code == 201]
    merged_ids = [m["merged_id"] for m in done]
    assert len(merged_ids) == len(set(merged_ids))  # nobody merged twice
    for m in done:
        assert customers[m["merged_id"]]["status"] == "merged"
        assert customers[m["merged_id"]]["merged_into"] == m["survivor_id"]
    # No customer is both merged and the survivor of a merge still live.
    survivors = {m["survivor_id"] for m in done}
    for m in done:
        later = [x for x in done if x["merged_id"] == m["survivor_id"]]
        assert customers[m["survivor_id"]]["status"] == "active" or later
    assert all(customers[s]["status"] in ("active", "merged") for s in survivors)
    await _claims_are_consistent(service, tenant, customers)

    merged_events = await eventually(
        lambda: published(service.settings.kafka_bootstrap_servers, tenant=tenant),
        until=lambda es: len([e for e in es if e.type == "customer.merged.v1"]) == len(done),
    )
    assert len([e for e in merged_events if e.type == "customer.merged.v1"]) == len(done)


async def _claims_are_consistent(
    service: Service, tenant: str, customers: dict[str, dict[str, Any]]
) -> None:
    """Every claim points to an active customer that has it, and every identity and mobile of
    an active customer is claimed by it."""
    claims = await service.db["customer_claims"].find({"tenant": tenant}).to_list()
    holders = {c["_id"]: c["customer_id"] for c in claims}
    for claim_id, holder in holders.items():
        assert customers[holder]["status"] == "active", claim_id
        if "|identity|" in claim_id:
            key = claim_id.split("|identity|", 1)[1]
            assert key in {f"{i['kind']}:{i['value']}" for i in customers[holder]["identities"]}
    active = [c for c in customers.values() if c["status"] == "active"]
    expected = sum(len(c["identities"]) + (1 if c["mobile"] else 0) for c in active)
    assert len(holders) == expected
    identity_claims = list(itertools.chain.from_iterable(c["identities"] for c in active))
    assert len(identity_claims) == len({f"{i['kind']}:{i['value']}" for i in identity_claims})
