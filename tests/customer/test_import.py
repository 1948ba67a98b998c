"""CSV import over real HTTP: good rows are registered, bad rows and duplicates are reported
per row, progress reaches the total, a refused file (unknown column, too large, not CSV)
imports nothing, and a resumed job does not import a row twice."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from servicekit.clock import utcnow
from servicekit.jobs import JOBS, POLL_OVERRIDE, JobStore
from services.customer.service.imports import MAX_IMPORT_BYTES
from tests.customer.support import Service, finished
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
CSV = {"content-type": "text/csv"}


@pytest.fixture(scope="module", autouse=True)
def poll_often(service: Service) -> None:
    # Jobs this test rewinds are not submitted, so nothing wakes the runner: poll often.
    service.runtime.state[POLL_OVERRIDE] = 0.05


async def upload(http: httpx.AsyncClient, tenant: str, text: str) -> httpx.Response:
    headers = {**CSV, "X-Tenant-Id": tenant, "X-Actor-Id": "ops-1"}
    return await http.post("/imports/customers", content=text.encode(), headers=headers)


async def imported(http: httpx.AsyncClient, tenant: str, text: str) -> dict[str, Any]:
    response = await upload(http, tenant, text)
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/jobs/{job['id']}"
    assert job["kind"] == "customer.import" and "csv" not in str(job["params"])
    return await finished(http, tenant, job["id"])


async def customers(http: httpx.AsyncClient, tenant: str, **params: Any) -> list[dict[str, Any]]:
    headers = {"X-Tenant-Id": tenant, "X-Actor-Roles": "admin"}
    response = await http.get("/customers", params={"limit": 200, **params}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return response.json()


async def test_good_rows_are_imported_and_bad_ones_reported_per_row(
    http: httpx.AsyncClient, tenant: str
) -> None:
    field = {"key": "tier", "label": "Tier", "type": "enum", "options": ["gold", "vip"]}
    defined = await http.post("/custom-fields", json=field, headers={"X-Tenant-Id": tenant})
    assert defined.status_code == 201, defined.text
    existing = {"display_name": "Old", "source_channel": "store", "mobile": "13800138009"}
    made = await http.post("/customers", json=existing, headers={"X-Tenant-Id": tenant})
    assert made.status_code == 201, made.text
    text = "\n".join(
        [
            "display_name,mobile,email,union_id,cf.tier,city,owner_id",
            "Li Lei,13800138001,li@example.com,u-1,gold,Hangzhou,adv-1",  # 2
            "Han Meimei,12345,,,,,",  # 3
            "Wei,138 0013 8001,,,,,",  # 4: Li Lei's mobile
            '"{""$ne"": null}",13800138002,,,,,',  # 5: an odd name, still a name
            'Zhao,"{""$gt"": """"}",,,,,',  # 6
            "Qian,13800138003,,u-1,,,",  # 7: Li Lei's union id
            "Sun,13800138004,,,bronze,,",  # 8
            "Zhou,13800138009,,,,,",  # 9: the existing customer's mobile
            "Wu,13800138005,wu@example.com,,vip,Shanghai,",  # 10
        ]
    )
    done = await imported(http, tenant, text)

    assert done["state"] == "succeeded", done
    assert (done["total"], done["processed"], done["succeeded"], done["failed"]) == (9, 9, 3, 6)
    assert done["checkpoint"] == 10 and done["created_by"] == "ops-1"
    assert done["errors"] == [
        {"item": "row 3", "reason": "mobile: not a valid mobile number"},
        {"item": "row 4", "reason": "mobile: another customer already has this mobile"},
        {"item": "row 6", "reason": "mobile: not a valid mobile number"},
        {"item": "row 7", "reason": "union_id: another customer already has this identity"},
        {"item": "row 8", "reason": "cf.tier: expected one of ['gold', 'vip']"},
        {"item": "row 9", "reason": "mobile: another customer already has this mobile"},
    ]
    names = sorted(c["display_name"] for c in await customers(http, tenant))
    assert names == ["Li Lei", "Old", "Wu", '{"$ne": null}']
    [li] = await customers(http, tenant, mobile="13800138001")
    assert li["source_channel"] == "import" and li["owner_id"] == "adv-1"
    assert li["address"]["city"] == "Hangzhou" and li["custom_fields"] == {"tier": "gold"}
    assert li["identities"] == [{"kind": "union_id", "value": "u-1"}]
    assert li["email"] == "li@example.com"


async def test_an_unknown_column_refuses_the_file_before_any_import(
    http: httpx.AsyncClient, tenant: str
) -> None:
    body = assert_problem(await upload(http, tenant, "display_name,phone\nLi,1\n"), 422)
    assert body["errors"] == [{"field": "header", "reason": "unknown columns: phone"}]
    body = assert_problem(await upload(http, tenant, "display_name,cf.nope\nLi,1\n"), 422)
    assert "cf.nope" in body["detail"]
    assert_problem(await upload(http, tenant, "display_name\n"), 422)
    jobs = await http.get("/jobs", headers={"X-Tenant-Id": tenant})
    assert jobs.json()["items"] == [] and await customers(http, tenant) == []


async def test_a_file_over_five_megabytes_is_refused(http: httpx.AsyncClient, tenant: str) -> None:
    row = "Li Lei,13800138001\n"
    text = "display_name,mobile\n" + row * (MAX_IMPORT_BYTES // len(row) + 1)
    body = assert_problem(await upload(http, tenant, text), 413)
    assert body["code"] == "payload_too_large"
    assert (await http.get("/jobs", headers={"X-Tenant-Id": tenant})).json()["items"] == []


async def test_only_utf8_csv_is_accepted(http: httpx.AsyncClient, tenant: str) -> None:
    headers = {"X-Tenant-Id": tenant}
    as_json = await http.post("/imports/customers", json={"display_name": "Li"}, headers=headers)
    assert assert_problem(as_json, 415)["code"] == "unsupported_media_type"
    latin = await http.post(
        "/imports/customers", content="display_name\nLé\n".encode("latin-1"), headers=CSV | headers
    )
    assert assert_problem(latin, 422)["errors"][0]["field"] == "body"


async def test_a_resumed_import_does_not_import_a_row_twice(
    http: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    text = "display_name,mobile,store_member_no\n" + "\n".join(
        f"Customer {i},1380013810{i},M{i}" for i in range(2, 6)
    )
    done = await imported(http, tenant, text)
    assert done["state"] == "succeeded" and done["succeeded"] == 4

    # Rewind the job to how a runner that crashed after row 2's checkpoint (but after
    # importing every row) leaves it: running, lease lapsed, its file still attached.
    runtime = service.runtime
    sealed = runtime.state["vault"].seal(text, context=f"{tenant}/import")
    await JobStore(runtime.db).attach(done["id"], tenant, {"csv": sealed})
    rewound = {"state": "running", "owner": "dead-runner", "checkpoint": 2, "errors": []}
    rewound |= {"lease_until": utcnow() - timedelta(seconds=1), "processed": 1}
    rewound |= {"succeeded": 1, "failed": 0, "result": None, "finished_at": None}
    await runtime.db[JOBS].update_one({"_id": done["id"]}, {"$set": rewound})

    async def resumed() -> dict[str, Any]:
        job = await finished(http, tenant, done["id"])
        return job if job["attempts"] == 2 else {}

    again = await eventually(resumed, until=bool)
    assert again["state"] == "succeeded" and again["processed"] == 4
    assert [e["item"] for e in again["errors"]] == ["row 3", "row 4", "row 5"]
    assert {e["reason"] for e in again["errors"]} == {"already imported"}
    assert len(await customers(http, tenant)) == 4
