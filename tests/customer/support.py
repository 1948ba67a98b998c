"""What the customer-service tests share besides fixtures: the running service, the actors
they call as, and the helpers the merge, data-rights and overview tests all use."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from services.customer.settings import CustomerSettings
from tests.support.running import RunningService
from tests.support.waiting import eventually

ADMIN = {"X-Actor-Id": "ops-1", "X-Actor-Roles": "admin"}
ADVISOR = {"X-Actor-Id": "advisor-7", "X-Actor-Roles": "advisor"}
DPO = {"X-Actor-Id": "dpo-1", "X-Actor-Roles": "dpo"}
FINISHED = {"succeeded", "failed", "cancelled"}

#: The `client` fixture: `client(headers, tenant=...)` opens a client on the service as
#: the test's tenant (or `tenant`; None sends no tenant) with `headers` added.
Client = Callable[..., httpx.AsyncClient]


#: The service one test module runs on a real socket.
Service = RunningService[CustomerSettings]


async def register(api: httpx.AsyncClient, name: str = "Li Lei", **fields: Any) -> dict[str, Any]:
    body = {"display_name": name, "source_channel": "mini_program", **fields}
    response = await api.post("/customers", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def get(api: httpx.AsyncClient, path: str) -> Any:
    response = await api.get(path)
    assert response.status_code == 200, response.text
    return response.json()


async def record_activity(api: httpx.AsyncClient, customer_id: str, tag: str) -> None:
    """One consent, two behaviour events, a paid order and a follow-up with a reminder."""
    now = datetime.now(UTC)
    consent = {"granted": True, "source": "store_form"}
    response = await api.put(f"/customers/{customer_id}/consents/email/marketing", json=consent)
    assert response.status_code == 200, response.text
    for minutes in (2, 1):
        event = {
            "kind": "product_view",
            "occurred_at": (now - timedelta(minutes=minutes)).isoformat(),
        }
        response = await api.post(f"/customers/{customer_id}/behaviour", json=event)
        assert response.status_code == 201, response.text
    paid = {
        "order_id": f"ord-{tag}",
        "customer_id": customer_id,
        "amount": 1000,
        "lines": [{"line_id": "l1", "sku": "sku-1", "quantity": 1, "amount": 1000}],
        "paid_at": (now - timedelta(hours=1)).isoformat(),
    }
    response = await api.post("/orders/paid", json=paid)
    assert response.status_code == 201, response.text
    follow_up = {
        "kind": "call",
        "notes": f"called about {tag}",
        "reminder": {"remind_at": (now + timedelta(days=3)).isoformat(), "owner_id": "adv-1"},
    }
    response = await api.post(f"/customers/{customer_id}/follow-ups", json=follow_up)
    assert response.status_code == 201, response.text


async def merge(
    api: httpx.AsyncClient, survivor: str, merged: str, reason: str = "same person"
) -> httpx.Response:
    return await api.post(
        f"/customers/{survivor}/merge", json={"merged_id": merged, "reason": reason}
    )


async def finished(http: httpx.AsyncClient, tenant: str, job_id: str) -> dict[str, Any]:
    """The job once it has finished, polled as `tenant`."""

    async def poll() -> dict[str, Any]:
        response = await http.get(f"/jobs/{job_id}", headers={"X-Tenant-Id": tenant})
        assert response.status_code == 200, response.text
        return response.json()

    return await eventually(poll, until=lambda job: job["state"] in FINISHED, within=60)
