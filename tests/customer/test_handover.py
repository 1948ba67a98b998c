"""Handover over real HTTP: an advisor's customers move to a colleague or round-robin to a
team as a pollable job, with owner history, change log and `customer.owner_changed.v1`; a
customer reassigned by someone else meanwhile is skipped and reported, never overwritten;
jobs are the tenant's own."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest

from servicekit.context import Actor
from services.customer.service.handover import transfer
from services.customer.service.profiles import CustomerService
from services.customer.store.custom_fields import CustomFieldStore
from services.customer.store.customers import CustomerStore
from tests.customer.support import Service, finished
from tests.support.events import published
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


async def register(http: httpx.AsyncClient, tenant: str, owner: str | None) -> str:
    body = {"display_name": "Han Meimei", "source_channel": "store", "owner_id": owner}
    response = await http.post("/customers", json=body, headers={"X-Tenant-Id": tenant})
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def customer(http: httpx.AsyncClient, tenant: str, customer_id: str) -> dict[str, Any]:
    response = await http.get(f"/customers/{customer_id}", headers={"X-Tenant-Id": tenant})
    assert response.status_code == 200, response.text
    return response.json()


async def start(http: httpx.AsyncClient, tenant: str, **body: Any) -> dict[str, Any]:
    headers = {"X-Tenant-Id": tenant, "X-Actor-Id": "ops-lead"}
    response = await http.post("/handovers", json=body, headers=headers)
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/jobs/{job['id']}"
    assert job["kind"] == "customer.handover" and job["state"] in {"queued", "running"}
    return job


async def test_handover_to_a_colleague_keeps_history_and_publishes(
    http: httpx.AsyncClient, tenant: str, infra
) -> None:
    leaving = [await register(http, tenant, "adv-leaving") for _ in range(5)]
    others = await register(http, tenant, "adv-staying")

    job = await start(http, tenant, from_owner="adv-leaving", to_owner="adv-b", reason="resigned")
    done = await finished(http, tenant, job["id"])

    assert done["state"] == "succeeded", done
    assert (done["total"], done["processed"], done["succeeded"], done["failed"]) == (5, 5, 5, 0)
    assert done["result"] == {"moved": 5} and done["created_by"] == "ops-lead"
    for customer_id in leaving:
        moved = await customer(http, tenant, customer_id)
        assert moved["owner_id"] == "adv-b"
        last = moved["owner_history"][-1]
        assert last["from_owner"] == "adv-leaving" and last["to_owner"] == "adv-b"
        assert last["reason"] == "handover:resigned" and last["by"] == "ops-lead"
    assert (await customer(http, tenant, others))["owner_id"] == "adv-staying"

    log = await http.get(f"/customers/{leaving[0]}/change-log", headers={"X-Tenant-Id": tenant})
    assert log.json()["items"][0]["reason"] == "handover:resigned"

    async def owner_events() -> list[Any]:
        envelopes = await published(infra.kafka_bootstrap_servers, tenant=tenant)
        return [e for e in envelopes if e.type == "customer.owner_changed.v1"]

    events = await eventually(owner_events, until=lambda found: len(found) == 5)
    assert {e.data["customer_id"] for e in events} == set(leaving)
    assert {e.data["reason"] for e in events} == {"handover:resigned"}


async def test_round_robin_shares_customers_evenly_in_customer_id_order(
    http: httpx.AsyncClient, tenant: str
) -> None:
    leaving = sorted([await register(http, tenant, "adv-x") for _ in range(10)])
    team = ["adv-a", "adv-b", "adv-c"]

    job = await start(http, tenant, from_owner="adv-x", team=team, reason="transferred")
    done = await finished(http, tenant, job["id"])

    assert done["state"] == "succeeded" and done["succeeded"] == 10
    owners = [(await customer(http, tenant, c))["owner_id"] for c in leaving]
    assert owners == [team[i % 3] for i in range(10)]
    counts = Counter(owners)
    assert max(counts.values()) - min(counts.values()) <= 1


async def test_an_advisor_without_customers_finishes_at_once(
    http: httpx.AsyncClient, tenant: str
) -> None:
    job = await start(http, tenant, from_owner="adv-nobody", to_owner="adv-b")
    done = await finished(http, tenant, job["id"])
    assert done["state"] == "succeeded" and done["total"] == 0 and done["processed"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"from_owner": "adv-a", "team": ["adv-b", "adv-a"]},
        {"from_owner": "adv-a", "to_owner": "adv-a"},
        {"from_owner": "adv-a", "to_owner": "adv-b", "team": ["adv-c"]},
        {"from_owner": "adv-a"},
        {"from_owner": "adv-a", "team": []},
        {"from_owner": "adv-a", "team": ["adv-b", "adv-b"]},
        {"from_owner": {"$ne": None}, "to_owner": "adv-b"},
        {"from_owner": "adv-a", "to_owner": "adv-b", "reason": ""},
    ],
    ids=[
        "leaver-in-team",
        "to-self",
        "both",
        "neither",
        "empty-team",
        "twice",
        "operator",
        "blank-reason",
    ],
)
async def test_a_bad_handover_is_refused_and_starts_nothing(
    http: httpx.AsyncClient, tenant: str, body: dict[str, Any]
) -> None:
    response = await http.post("/handovers", json=body, headers={"X-Tenant-Id": tenant})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    jobs = await http.get("/jobs", headers={"X-Tenant-Id": tenant})
    assert jobs.json()["items"] == []


async def test_a_customer_reassigned_meanwhile_is_skipped_not_overwritten(
    http: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    customer_id = await register(http, tenant, "adv-leaving")
    runtime = service.runtime
    store = CustomerStore(runtime.db, runtime.state["vault"])
    customers = CustomerService(runtime.uow, store, CustomFieldStore(runtime.db))
    # The job listed this customer as the leaver's; then a manager moved them elsewhere.
    assert customer_id in await store.owned_by(tenant, "adv-leaving")
    moved = await http.post(
        f"/customers/{customer_id}/owner",
        json={"owner_id": "adv-manager-pick"},
        headers={"X-Tenant-Id": tenant},
    )
    assert moved.status_code == 200, moved.text

    skipped = await transfer(
        customers,
        tenant,
        customer_id,
        from_owner="adv-leaving",
        to_owner="adv-b",
        reason="handover:resigned",
        actor=Actor(id="ops-lead"),
    )

    assert skipped == "skipped: reassigned meanwhile to adv-manager-pick"
    after = await customer(http, tenant, customer_id)
    assert after["owner_id"] == "adv-manager-pick" and len(after["owner_history"]) == 2


async def test_jobs_are_the_tenants_own_and_list_by_kind(
    http: httpx.AsyncClient, tenant: str, unique: str
) -> None:
    job = await start(http, tenant, from_owner="adv-none", to_owner="adv-b")
    await finished(http, tenant, job["id"])

    stranger = await http.get(f"/jobs/{job['id']}", headers={"X-Tenant-Id": f"s{unique}"})
    assert stranger.status_code == 404
    assert stranger.headers["content-type"] == "application/problem+json"
    listed = await http.get(
        "/jobs", params={"kind": "customer.handover"}, headers={"X-Tenant-Id": tenant}
    )
    assert [j["id"] for j in listed.json()["items"]] == [job["id"]]
    none = await http.get(
        "/jobs", params={"kind": "customer.import"}, headers={"X-Tenant-Id": tenant}
    )
    assert none.json()["items"] == []
    bad = await http.get("/jobs", params={"state": "exploded"}, headers={"X-Tenant-Id": tenant})
    assert bad.status_code == 422
    assert (await http.get("/jobs/job_nothex", headers={"X-Tenant-Id": tenant})).status_code == 422
    late = await http.post(f"/jobs/{job['id']}/cancel", headers={"X-Tenant-Id": tenant})
    assert late.status_code == 409 and late.json()["code"] == "job_finished"
