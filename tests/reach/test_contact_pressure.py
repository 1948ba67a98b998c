"""The contact-pressure check through the API, with the sandbox provider: consent per
channel and purpose, frequency caps (exact under concurrent senders), quiet hours deferring
marketing but not service messages, dedupe, unsubscribe taking effect at once, and the
mini-program subscription quota ledger."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from services.reach.store.messages import MESSAGES, SCHEDULED
from tests.reach.support import Service, consent, customer_id, policy, sandbox, send, template
from tests.support.waiting import eventually


@pytest.fixture(scope="module")
def overrides() -> dict[str, Any]:
    return {"consumer_groups": set()}  # no events needed here: skip the group joins


async def test_without_consent_nothing_is_sent(
    service: Service, tenant: str, api: httpx.AsyncClient
) -> None:
    await policy(api)
    await template(api)
    lin = customer_id()
    await consent(service, tenant, lin, channel="email")  # another channel's consent does not count

    message = await send(api, lin)

    assert message["status"] == "suppressed" and message["reason"] == "no_consent:sms:marketing"
    assert await sandbox(service, tenant) == []


async def test_a_consented_customer_gets_the_rendered_message_once(
    service: Service, tenant: str, api: httpx.AsyncClient
) -> None:
    await policy(api)
    await template(api)
    lin = customer_id()
    await consent(service, tenant, lin)

    first = await send(api, lin, "order-1-paid", coupon_amount="20")
    again = await send(api, lin, "order-1-paid", coupon_amount="20")

    assert first["status"] == "delivered" and first["provider"] == "sandbox"
    assert again["message_id"] == first["message_id"] and again["status"] == "delivered"
    [received] = await sandbox(service, tenant, lin)
    body = received["content"]["body"]
    assert body.startswith("会员您好, 送您20元券 http")
    assert f"/r/{first['message_id']}." in body  # the tracked link, with its MAC


async def test_daily_and_weekly_caps(service: Service, tenant: str, api: httpx.AsyncClient) -> None:
    await policy(api, caps={"sms": {"per_day": 1, "per_week": 5}})
    await template(api)
    lin = customer_id()
    await consent(service, tenant, lin)

    outcomes = [await send(api, lin) for _ in range(2)]
    assert [o["status"] for o in outcomes] == ["delivered", "suppressed"]
    assert outcomes[1]["reason"] == "frequency_cap_day"

    await policy(api, caps={"sms": {"per_day": 5, "per_week": 2}})
    outcomes = [await send(api, lin) for _ in range(2)]
    assert [o["status"] for o in outcomes] == ["delivered", "suppressed"]
    assert outcomes[1]["reason"] == "frequency_cap_week"
    assert len(await sandbox(service, tenant, lin)) == 2


async def test_a_cap_holds_under_many_concurrent_senders(
    service: Service, tenant: str, api: httpx.AsyncClient
) -> None:
    await policy(api, caps={"sms": {"per_day": 3, "per_week": 10}})
    await template(api)
    lin = customer_id()
    await consent(service, tenant, lin)

    await asyncio.gather(*(send(api, lin) for _ in range(20)))

    # Losers of a slot race are decided again by the dispatcher: wait until none is left.
    await eventually(
        lambda: service.db[SCHEDULED].count_documents({"tenant": tenant}), until=lambda n: n == 0
    )
    statuses = [d["status"] for d in await service.db[MESSAGES].find({"tenant": tenant}).to_list()]
    assert statuses.count("delivered") == 3 and statuses.count("suppressed") == 17
    assert len(await sandbox(service, tenant, lin)) == 3


async def test_quiet_hours_defer_marketing_but_not_service(
    service: Service, tenant: str, api: httpx.AsyncClient
) -> None:
    zone = ZoneInfo("Asia/Shanghai")
    local = datetime.now(zone)
    start, end = (
        (local - timedelta(hours=1)).strftime("%H:%M"),
        (local + timedelta(hours=1)).strftime("%H:%M"),
    )
    await policy(api, time_zone="Asia/Shanghai", quiet_start=start, quiet_end=end)
    await template(api)
    lin = customer_id()
    await consent(service, tenant, lin)
    await consent(service, tenant, lin, purpose="service")

    marketing = await send(api, lin)
    notice = await send(api, lin, purpose="service")

    assert marketing["status"] == "scheduled" and notice["status"] == "delivered"
    [waiting] = await service.db[SCHEDULED].find({"tenant": tenant}).to_list()
    until = waiting["not_before"].astimezone(zone)
    assert until.strftime("%H:%M") == end and until > local
    assert [m["_id"] for m in await sandbox(service, tenant)] == [notice["message_id"]]

    # The quiet hours pass: the deferred message goes out, checked again at that moment.
    await policy(api)
    past = datetime.now(UTC) - timedelta(seconds=1)
    await service.db[SCHEDULED].update_one(
        {"_id": waiting["_id"]}, {"$set": {"not_before": past, "lease_until": past}}
    )
    await eventually(lambda: sandbox(service, tenant), until=lambda found: len(found) == 2)


async def test_unsubscribe_stops_marketing_at_once(
    service: Service, tenant: str, api: httpx.AsyncClient
) -> None:
    await policy(api, caps={"sms": {"per_day": 5, "per_week": 5}})
    await template(api)
    lin = customer_id()
    await consent(service, tenant, lin)
    assert (await send(api, lin))["status"] == "delivered"

    response = await api.post(
        f"/customers/{lin}/unsubscribe", json={"channel": "sms", "source": "sms_reply"}
    )
    assert response.status_code == 202, response.text

    after = await send(api, lin)
    assert after["status"] == "suppressed" and after["reason"] == "no_consent:sms:marketing"
    assert len(await sandbox(service, tenant, lin)) == 1


SUBSCRIPTION = {
    "platform_template_id": "tmpl-coupon-expiry",
    "fields": {"thing1": "{{customer_name}}", "amount2": "{{coupon_amount}}元"},
    "page": "pages/coupons/index",
}


async def test_one_subscription_message_per_authorisation(
    service: Service, tenant: str, api: httpx.AsyncClient
) -> None:
    await policy(api, caps={"subscription_message": {"per_day": 50, "per_week": 50}})
    await template(api, "expiry", "subscription_message", **SUBSCRIPTION)
    lin = customer_id()
    await consent(service, tenant, lin, channel="subscription_message")
    url = f"/customers/{lin}/subscription-authorisations"
    assert (
        await api.post(url, json={"platform_template_id": "tmpl-coupon-expiry", "count": 3})
    ).json() == {"available": 3}

    outcomes = await asyncio.gather(
        *(send(api, lin, channel="subscription_message", template_id="expiry") for _ in range(10))
    )

    await eventually(
        lambda: service.db[SCHEDULED].count_documents({"tenant": tenant}), until=lambda n: n == 0
    )
    statuses = [d["status"] for d in await service.db[MESSAGES].find({"tenant": tenant}).to_list()]
    assert statuses.count("delivered") == 3, outcomes
    reasons = {
        d.get("reason")
        for d in await service.db[MESSAGES]
        .find({"tenant": tenant, "status": "suppressed"})
        .to_list()
    }
    assert reasons == {"no_subscription_authorisation"}
    assert len(await sandbox(service, tenant, lin)) == 3


async def test_bad_input_is_refused_with_a_problem_and_changes_nothing(
    service: Service, tenant: str, api: httpx.AsyncClient
) -> None:
    await template(api)
    bad = [
        {
            "customer_id": {"$gt": ""},
            "channel": "sms",
            "purpose": "marketing",
            "template_id": "welcome",
            "dedupe_key": "k",
        },
        {
            "customer_id": "c1",
            "channel": "fax",
            "purpose": "marketing",
            "template_id": "welcome",
            "dedupe_key": "k",
        },
        {"customer_id": "c1", "channel": "sms", "purpose": "marketing", "template_id": "welcome"},
    ]
    for body in bad:
        response = await api.post("/messages", json=body)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
    missing = await api.post("/messages", json={**bad[1], "channel": "sms", "template_id": "nope"})
    assert missing.status_code == 404 and missing.json()["code"] == "template_not_found"
    wrong_zone = await api.put("/policy", json={"time_zone": "Mars/Olympus"})
    assert wrong_zone.status_code == 422
    assert await service.db[MESSAGES].count_documents({"tenant": tenant}) == 0
