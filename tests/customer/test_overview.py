"""Customer 360 over real HTTP on the real embedded store: every part in one call, read
from its own store, the profile masked for a caller without the right."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from servicekit.errors import PROBLEM_JSON
from tests.customer.support import ADMIN, ADVISOR, get, record_activity, register

pytestmark = pytest.mark.integration


@pytest.fixture
def actor() -> dict[str, str]:
    return ADMIN


async def test_overview_returns_every_part_in_one_call(api: httpx.AsyncClient) -> None:
    union = {"kind": "union_id", "value": f"u-{uuid.uuid4().hex[:8]}"}
    customer = await register(api, mobile="13800002222", identities=[union])
    await record_activity(api, customer["id"], "a")
    now = datetime.now(UTC)
    batch = {
        "events": [
            {
                "customer_id": customer["id"],
                "kind": "page_view",
                "occurred_at": (now - timedelta(minutes=10 + n)).isoformat(),
            }
            for n in range(25)
        ]
    }
    assert (await api.post("/behaviour/batch", json=batch)).status_code == 200

    overview = await get(api, f"/customers/{customer['id']}/overview")
    assert overview["profile"]["mobile"] == "+8613800002222"
    assert overview["identities"] == [union]
    assert [(c["channel"], c["state"]) for c in overview["consents"]] == [("email", "granted")]
    assert overview["purchase_stats"]["order_count"] == 1
    assert overview["purchase_stats"]["rfm"]["monetary"] == 1000
    recent = overview["recent_behaviour"]
    assert len(recent) == 20 and recent[0]["kind"] == "product_view"  # newest first
    assert [o["order_id"] for o in overview["recent_orders"]] == ["ord-a"]
    [reminder] = overview["open_reminders"]
    assert reminder["reminder"]["state"] == "pending"
    assert overview["recent_changes"][0]["reason"] == "registered"


async def test_overview_masks_personal_data_for_an_advisor(api: httpx.AsyncClient) -> None:
    customer = await register(api, mobile="13800003333")
    response = await api.get(f"/customers/{customer['id']}/overview", headers=ADVISOR)
    assert response.status_code == 200
    overview = response.json()
    assert overview["profile"]["mobile"] == "+86138****3333"
    assert overview["profile"]["personal_data_masked"] is True
    assert overview["purchase_stats"] is None and overview["recent_orders"] == []


async def test_overview_of_an_unknown_customer_is_a_problem(api: httpx.AsyncClient) -> None:
    response = await api.get(f"/customers/cus_{uuid.uuid4().hex}/overview")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON
    assert (await api.get("/customers/$where/overview")).status_code == 422
