"""Each tenant's policy (time zone, margin rules) applies to that tenant only: daily claim
limits count days and usable hours in its zone, and the margin check at configuration and
at checkout uses its margin rules. Tenants without a policy follow the service's settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from services.coupon.store.coupons import daily_id
from tests.coupon.support import (
    Client,
    Service,
    batch_spec,
    claim,
    draft_campaign,
    ok,
    open_budget,
    running_batches,
)

APPROVER = {"X-Actor-Id": "ops-1", "X-Actor-Roles": "budget_approver"}


@pytest.fixture(scope="module")
def overrides() -> dict[str, Any]:
    return {"consumer_groups": set()}  # no order events here: skip the consumers' start


@pytest.fixture
async def other(client: Client, tenant: str) -> AsyncIterator[httpx.AsyncClient]:
    """An approver of a second tenant."""
    async with client(APPROVER, tenant=f"{tenant}x") as opened:
        yield opened


async def set_policy(api: httpx.AsyncClient, **fields: object) -> dict:
    body = {"time_zone": "Asia/Shanghai", "min_margin_percent": 5, "cost_ratio_percent": 70}
    return await ok(api.put("/policy", json={**body, **fields}))


async def test_a_tenant_without_a_policy_follows_the_settings_and_only_editors_change_it(
    api: httpx.AsyncClient, client: Client, service: Service
) -> None:
    default = await ok(api.get("/policy"))
    assert default["own"] is False
    assert default["time_zone"] == service.settings.time_zone
    assert default["min_margin_percent"] == service.settings.min_margin_percent
    body = {"time_zone": "Europe/Paris", "min_margin_percent": 10, "cost_ratio_percent": 60}
    async with client({"X-Actor-Id": "clerk", "X-Actor-Roles": "marketer"}) as clerk:
        refused = await clerk.put("/policy", json=body)
    assert (refused.status_code, refused.json()["code"]) == (403, "not_policy_editor")
    bad = await api.put(
        "/policy",
        json={"time_zone": "Mars/Olympus", "min_margin_percent": 101, "cost_ratio_percent": -1},
    )
    assert bad.status_code == 422
    fields = {e["field"] for e in bad.json()["errors"]}
    assert {"time_zone", "min_margin_percent", "cost_ratio_percent"} <= fields
    assert (await ok(api.get("/policy")))["own"] is False  # nothing changed
    saved = await set_policy(api, **body)
    assert saved["own"] is True and saved["updated_by"] == "ops-1"
    assert {k: v for k, v in (await ok(api.get("/policy"))).items() if k in body} == body


async def test_two_tenants_in_different_zones_count_daily_limits_in_their_own_days(
    api: httpx.AsyncClient, other: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    """UTC+14 and UTC-11 are 25 hours apart: their dates differ at every instant."""
    zones = {tenant: "Pacific/Kiritimati", f"{tenant}x": "Pacific/Pago_Pago"}
    days: dict[str, str] = {}
    for caller, name in ((api, tenant), (other, f"{tenant}x")):
        await set_policy(caller, time_zone=zones[name])
        ids = await running_batches(
            caller, batch_spec(per_customer_limit=3, per_customer_daily_limit=1)
        )
        before = datetime.now(UTC).astimezone(ZoneInfo(zones[name])).date().isoformat()
        await ok(claim(caller, ids["main"], "cus_1"), 201)
        again = await claim(caller, ids["main"], "cus_1")
        assert again.json()["code"] == "daily_limit_reached"
        keys = {
            day: daily_id(name, ids["main"], "cus_1", day, 1)
            for day in {
                before,
                datetime.now(UTC).astimezone(ZoneInfo(zones[name])).date().isoformat(),
            }
        }
        found = (
            await service.db["daily_claims"].find({"_id": {"$in": list(keys.values())}}).to_list()
        )
        assert len(found) == 1
        days[name] = next(day for day, key in keys.items() if key == found[0]["_id"])
    assert days[tenant] != days[f"{tenant}x"]


def order(order_id: str, *, cost: int | None = None) -> dict:
    line = {"line_id": "1", "product_id": "p-1", "price": 12_000, "quantity": 1, "cost": cost}
    return {"order_id": order_id, "lines": [line]}


async def test_usable_hours_are_the_tenants_own_hours_at_checkout(
    api: httpx.AsyncClient, other: httpx.AsyncClient, tenant: str
) -> None:
    """Two fixed zones 12 hours apart: a window of a few hours around the local hour in one
    is closed in the other."""
    here, there = "Etc/GMT-8", "Etc/GMT+4"
    hour = datetime.now(UTC).astimezone(ZoneInfo(here)).hour
    hours = {"from_hour": max(0, hour - 2), "to_hour": min(24, hour + 3)}
    reasons = {}
    for caller, zone in ((api, here), (other, there)):
        await set_policy(caller, time_zone=zone)
        ids = await running_batches(caller, batch_spec(usable_hours=hours))
        await ok(claim(caller, ids["main"], "cus_h"), 201)
        quote = await ok(caller.post("/customers/cus_h/quote", json=order("o-h")))
        reasons[zone] = [o["reason"] for o in quote["applicable"] + quote["not_applicable"]]
    assert reasons == {here: [None], there: ["wrong_hour"]}


async def test_a_higher_minimum_margin_refuses_a_batch_for_that_tenant_only(
    api: httpx.AsyncClient, other: httpx.AsyncClient
) -> None:
    """满100减10 with cost at 70 % keeps a 22 % margin: refused under a 30 % minimum."""
    await set_policy(api, min_margin_percent=30)
    refused = await api.post(
        "/campaigns",
        json={"name": "x", "budget_id": (await open_budget(api))["id"], "batches": [batch_spec()]},
    )
    assert (refused.status_code, refused.json()["code"]) == (422, "margin_check_failed")
    assert "at least 30%" in refused.json()["detail"]
    assert (await draft_campaign(other, (await open_budget(other))["id"], batch_spec()))["id"]
    # At checkout, an order with line costs is checked against the tenant's minimum too:
    # 120 - 10 = 110 paid for a cost of 85 keeps 22.7 %.
    quotes = {}
    for name, caller in (("strict", api), ("default", other)):
        await set_policy(caller, min_margin_percent=0)  # lets the batch through first
        ids = await running_batches(caller, batch_spec())
        await ok(claim(caller, ids["main"], "cus_m"), 201)
        await set_policy(caller, min_margin_percent=30 if name == "strict" else 5)
        quote = await ok(caller.post("/customers/cus_m/quote", json=order("o-m", cost=8_500)))
        quotes[name] = [o["reason"] for o in quote["applicable"] + quote["not_applicable"]]
    assert quotes == {"strict": ["margin_too_low"], "default": [None]}
