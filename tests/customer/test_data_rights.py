"""Data subject rights over real HTTP on the real embedded store and broker: export of
everything held (roles enforced), erasure that leaves nothing identifying, keeps business
figures detached, answers the same when repeated, blocks later changes, and is published."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from servicekit.errors import PROBLEM_JSON
from tests.customer.support import (
    ADMIN,
    ADVISOR,
    DPO,
    Service,
    get,
    merge,
    record_activity,
    register,
)
from tests.support.events import published
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
PERSONAL = ("13800001111", "li.lei@example.com", "West Lake", "11010519491231002X", "Li Lei")


@pytest.fixture
def actor() -> dict[str, str]:
    return ADMIN


async def person(api: httpx.AsyncClient) -> dict[str, Any]:
    return await register(
        api,
        "Li Lei",
        mobile="13800001111",
        email="li.lei@example.com",
        id_number="11010519491231002X",
        birthday="1990-02-03",
        address={"province": "Zhejiang", "city": "Hangzhou", "street": "1 West Lake Road"},
        identities=[{"kind": "union_id", "value": f"u-{uuid.uuid4().hex[:8]}"}],
        custom_fields={},
    )


async def test_export_holds_everything_in_clear_for_a_dpo(api: httpx.AsyncClient) -> None:
    customer = await person(api)
    await record_activity(api, customer["id"], "x")

    response = await api.get(f"/customers/{customer['id']}/export", headers=DPO)
    assert response.status_code == 200, response.text
    export = response.json()
    assert export["profile"]["mobile"] == "+8613800001111"
    assert export["profile"]["id_number"] == "11010519491231002X"
    assert export["profile"]["identities"] == customer["identities"]
    [consent] = export["consents"]
    assert consent["current"]["state"] == "granted" and len(consent["history"]) == 1
    assert len(export["behaviour"]) == 2
    assert [o["order_id"] for o in export["orders"]] == ["ord-x"]
    assert export["purchase_stats"]["order_count"] == 1
    assert export["follow_ups"][0]["notes"] == "called about x"
    assert export["change_log"][0]["reason"] == "registered"
    assert export["merges"] == [] and export["exported_by"] == "dpo-1"


async def test_export_and_erase_need_the_admin_or_dpo_role(api: httpx.AsyncClient) -> None:
    customer = await person(api)
    for method, path in (("GET", "export"), ("POST", "erase")):
        response = await api.request(method, f"/customers/{customer['id']}/{path}", headers=ADVISOR)
        assert response.status_code == 403, response.text
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.json()["code"] == "role_required"
    assert (await get(api, f"/customers/{customer['id']}"))["status"] == "active"

    unknown = f"cus_{uuid.uuid4().hex}"
    assert (await api.post(f"/customers/{unknown}/erase")).status_code == 404
    assert (await api.post("/customers/{'$ne': null}/erase")).status_code == 422


async def test_erasure_removes_personal_data_keeps_figures_and_is_published(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    customer = await person(api)
    duplicate = await register(api, "Lei Li", email="lei.li@example.com")
    await record_activity(api, customer["id"], "e")
    await record_activity(api, duplicate["id"], "f")
    assert (await merge(api, customer["id"], duplicate["id"])).status_code == 201

    response = await api.post(f"/customers/{customer['id']}/erase", headers=DPO)
    assert response.status_code == 200, response.text
    receipt = response.json()
    assert receipt["status"] == "erased"
    repeat = await api.post(f"/customers/{customer['id']}/erase", headers=DPO)
    assert repeat.status_code == 200 and repeat.json() == receipt

    erased = await get(api, f"/customers/{customer['id']}")
    assert erased["display_name"] == "erased" and erased["identities"] == []
    assert erased["mobile"] is None and erased["email"] is None and erased["birthday"] is None
    assert erased["address"]["city"] == "Hangzhou" and erased["address"]["street"] is None
    assert (await get(api, f"/customers/{duplicate['id']}"))["status"] == "erased"

    db = service.db
    for collection in ("customers", "customer_change_log", "customer_merges", "follow_ups"):
        stored = repr(await db[collection].find({"tenant": tenant}).to_list())
        for secret in ("West Lake", "called about", "lei.li", "1990-02-03"):
            assert secret not in stored, (collection, secret)
    assert await db["customer_claims"].count_documents({"tenant": tenant}) == 0
    assert await db["behaviour_events"].count_documents({"tenant": tenant}) == 0
    orders = await db["orders"].find({"tenant": tenant}).to_list()
    assert sorted(o["amount"] for o in orders) == [1000, 1000]  # business totals kept
    assert all(o["customer_id"].startswith("anon_") for o in orders)
    stats = await db["purchase_stats"].find({"tenant": tenant}).to_list()
    assert [(s["order_count"], s["total_paid"]) for s in stats] == [(2, 2000)]
    assert stats[0]["customer_id"].startswith("anon_")

    log = await get(api, f"/customers/{customer['id']}/change-log")
    assert log["items"][0]["reason"] == "erased at the person's request"
    assert all(
        c["old"] is None and c["new"] is None
        for e in log["items"]
        for c in e["changes"]
        if c["field"] != "status"
    )

    for attempt in (
        api.patch(f"/customers/{customer['id']}", json={"display_name": "Back"}),
        merge(api, customer["id"], (await register(api))["id"]),
        api.post(
            f"/customers/{(await register(api))['id']}/merge",
            json={"merged_id": customer["id"], "reason": "x"},
        ),
    ):
        response = await attempt
        assert response.status_code == 409, response.text
    merges = await get(api, f"/customers/{customer['id']}/merges")
    undo = await api.post(f"/merges/{merges[0]['id']}/undo")
    assert undo.status_code == 409

    envelopes = await eventually(
        lambda: published(service.settings.kafka_bootstrap_servers, tenant=tenant),
        until=lambda es: len([e for e in es if e.type == "customer.erased.v1"]) >= 2,
    )
    erased_ids = {e.data["customer_id"] for e in envelopes if e.type == "customer.erased.v1"}
    assert erased_ids == {customer["id"], duplicate["id"]}
    for envelope in envelopes:
        if envelope.type in ("customer.erased.v1", "customer.merged.v1"):
            assert not any(secret in repr(envelope.data) for secret in PERSONAL)


async def test_a_merged_customer_is_erased_through_its_survivor(api: httpx.AsyncClient) -> None:
    survivor, duplicate = await person(api), await register(api)
    await merge(api, survivor["id"], duplicate["id"])
    response = await api.post(f"/customers/{duplicate['id']}/erase")
    assert response.status_code == 409
    assert response.json()["code"] == "customer_merged"
    assert response.json()["merged_into"] == survivor["id"]
