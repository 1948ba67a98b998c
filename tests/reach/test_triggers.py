"""Triggered rules end to end over the real broker: events published as their owning
services do (coupon, tagging, loyalty, customer), consumed by reach's consumer groups, turned
into messages after the rule's delay when its conditions hold; consent kept current from the
customer service's events; an expiry reminder dropped when the coupon is used first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from contracts.coupon import CouponClaimed, CouponRedeemed
from contracts.customer import (
    ConsentGranted,
    ConsentWithdrawn,
    CustomerErased,
    CustomerProfileChanged,
    CustomerRegistered,
    FollowUpReminderDue,
)
from contracts.loyalty import TierChanged
from contracts.tagging import SegmentMemberJoined
from services.reach.service import birthdays
from services.reach.service.wiring import reach_of
from services.reach.store.audience import CONSENTS, PROFILES
from services.reach.store.messages import MESSAGES, SCHEDULED
from tests.reach.support import Service, customer_id, policy, publish, sandbox, template
from tests.support.waiting import eventually

NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def overrides() -> dict[str, Any]:
    return {"birthday_sweep_seconds": 0.3}


def claimed(
    customer: str, coupon: str, face_value: int, valid_for: timedelta = timedelta(days=7)
) -> CouponClaimed:
    return CouponClaimed(
        coupon_id=coupon,
        batch_id="b1",
        campaign_id="c1",
        customer_id=customer,
        channel="self_claim",
        face_value=face_value,
        valid_from=NOW,
        valid_until=datetime.now(UTC) + valid_for,
        claimed_at=datetime.now(UTC),
    )


def granted(customer: str, channel: str = "sms") -> ConsentGranted:
    return ConsentGranted(
        customer_id=customer,
        channel=channel,
        purpose="marketing",
        source="api",
        granted_at=datetime.now(UTC),
    )


async def rule(api: httpx.AsyncClient, trigger: str, **fields: Any) -> dict[str, Any]:
    body = {
        "name": trigger,
        "trigger": trigger,
        "channel": "sms",
        "template_id": "welcome",
        **fields,
    }
    response = await api.post("/rules", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def consented(service: Service, tenant: str, customer: str, granted_: bool = True) -> None:
    await eventually(
        lambda: service.db[CONSENTS].find_one({"tenant": tenant, "customer_id": customer}),
        until=lambda doc: doc is not None and doc["granted"] is granted_,
    )


async def test_coupon_claimed_sends_when_conditions_hold(
    service: Service, tenant: str, api: httpx.AsyncClient
) -> None:
    await policy(api, caps={"sms": {"per_day": 5, "per_week": 5}})
    await template(
        api, body="{{customer_name}}, 您的{{coupon_amount}}元券已到账, {{coupon_expiry}}前有效"
    )
    await rule(
        api, "coupon_claimed", conditions=[{"field": "face_value", "op": "gte", "value": 1000}]
    )
    big, small = customer_id(), customer_id()
    registered = CustomerRegistered(
        customer_id=big,
        display_name="林小姐",
        source_channel="store",
        lifecycle_stage="customer",
        registered_at=NOW,
    )
    await publish(service, tenant, registered, granted(big), granted(small))
    await consented(service, tenant, big)
    await consented(service, tenant, small)

    await publish(service, tenant, claimed(big, "cp1", 2_000), claimed(small, "cp2", 500))

    [received] = await eventually(
        lambda: sandbox(service, tenant), until=lambda found: len(found) >= 1
    )
    assert received["customer_id"] == big
    assert received["content"]["body"].startswith("林小姐, 您的20元券已到账, 20")
    await eventually(
        lambda: service.db[SCHEDULED].count_documents({"tenant": tenant}), until=lambda n: n == 0
    )
    assert len(await sandbox(service, tenant)) == 1


async def test_a_delayed_rule_waits_and_a_withdrawal_in_between_stops_it(
    service: Service, tenant: str, api: httpx.AsyncClient
) -> None:
    await policy(api, caps={"sms": {"per_day": 5, "per_week": 5}})
    await template(api)
    await rule(
        api,
        "segment_joined",
        delay_seconds=2,
        conditions=[{"field": "segment_id", "op": "eq", "value": "seg_at_risk"}],
    )
    kept, withdrawn = customer_id(), customer_id()
    await publish(service, tenant, granted(kept), granted(withdrawn))
    await consented(service, tenant, kept)
    await consented(service, tenant, withdrawn)

    joined_at = datetime.now(UTC)
    await publish(
        service,
        tenant,
        SegmentMemberJoined(customer_id=kept, segment_id="seg_at_risk", joined_at=joined_at),
        SegmentMemberJoined(customer_id=withdrawn, segment_id="seg_at_risk", joined_at=joined_at),
        SegmentMemberJoined(customer_id=kept, segment_id="seg_loyal", joined_at=joined_at),
    )
    await eventually(
        lambda: service.db[SCHEDULED].count_documents({"tenant": tenant}), until=lambda n: n == 2
    )
    await publish(
        service,
        tenant,
        ConsentWithdrawn(
            customer_id=withdrawn,
            channel="sms",
            purpose="marketing",
            source="sms_reply",
            withdrawn_at=datetime.now(UTC),
        ),
    )
    await consented(service, tenant, withdrawn, granted_=False)

    [received] = await eventually(
        lambda: sandbox(service, tenant), until=lambda found: len(found) >= 1
    )
    assert received["customer_id"] == kept
    assert received["received_at"] >= joined_at + timedelta(seconds=2) - timedelta(milliseconds=5)
    suppressed = await eventually(
        lambda: service.db[MESSAGES].find_one({"tenant": tenant, "customer_id": withdrawn}),
        until=lambda doc: doc is not None,
    )
    assert (
        suppressed["status"] == "suppressed" and suppressed["reason"] == "no_consent:sms:marketing"
    )


async def test_an_expiry_reminder_is_dropped_when_the_coupon_is_used_first(
    service: Service, tenant: str, api: httpx.AsyncClient
) -> None:
    await template(api)
    await rule(api, "coupon_expiring", before_expiry_seconds=86_400)
    used, unused = customer_id(), customer_id()

    await publish(
        service,
        tenant,
        claimed(used, "cp-used", 1_000, timedelta(days=3)),
        claimed(unused, "cp-unused", 1_000, timedelta(days=3)),
    )
    drafts = await eventually(
        lambda: service.db[SCHEDULED].find({"tenant": tenant}).to_list(),
        until=lambda found: len(found) == 2,
    )
    for draft in drafts:  # two days from now: a day before the coupon's end
        assert (
            timedelta(days=1, hours=23)
            < draft["not_before"] - datetime.now(UTC)
            < timedelta(days=2, minutes=1)
        )

    await publish(
        service,
        tenant,
        CouponRedeemed(
            coupon_id="cp-used",
            batch_id="b1",
            campaign_id="c1",
            customer_id=used,
            order_id="o1",
            discount=1_000,
            redeemed_at=datetime.now(UTC),
        ),
    )
    await eventually(
        lambda: service.db[SCHEDULED].find({"tenant": tenant}).to_list(),
        until=lambda found: [d["customer_id"] for d in found] == [unused],
    )


async def test_tier_upgrades_and_advisor_reminders(
    service: Service, tenant: str, api: httpx.AsyncClient
) -> None:
    await policy(
        api, caps={"sms": {"per_day": 5, "per_week": 5}, "wechat": {"per_day": 5, "per_week": 5}}
    )
    await template(api, body="恭喜升级为{{tier_name}}")
    await template(api, "reminder", "wechat", body="请回访客户: {{note}}")
    await rule(
        api,
        "tier_upgraded",
        conditions=[{"field": "to_tier", "op": "in", "value": ["gold", "platinum"]}],
    )
    await rule(
        api, "follow_up_reminder_due", channel="wechat", purpose="service", template_id="reminder"
    )
    gold, advised = customer_id(), customer_id()
    await publish(service, tenant, granted(gold))
    await consented(service, tenant, gold)

    await publish(
        service,
        tenant,
        TierChanged(
            customer_id=gold,
            from_tier="silver",
            to_tier="gold",
            direction="up",
            reason="growth",
            growth=5000,
            changed_at=datetime.now(UTC),
        ),
        TierChanged(
            customer_id=gold,
            from_tier="gold",
            to_tier="silver",
            direction="down",
            reason="evaluation",
            growth=0,
            changed_at=datetime.now(UTC),
        ),
        FollowUpReminderDue(
            customer_id=advised,
            follow_up_id="f1",
            owner_id="advisor-7",
            due_at=datetime.now(UTC),
            note="新品试用回访",
        ),
    )

    found = await eventually(lambda: sandbox(service, tenant), until=lambda found: len(found) >= 2)
    by_customer = {d["customer_id"]: d for d in found}
    assert by_customer[gold]["content"]["body"] == "恭喜升级为gold"
    assert by_customer[advised]["address"] == "advisor-7"  # the advisor, not the customer, is told
    assert by_customer[advised]["content"]["body"] == "请回访客户: 新品试用回访"
    await eventually(
        lambda: service.db[SCHEDULED].count_documents({"tenant": tenant}), until=lambda n: n == 0
    )
    assert len(await sandbox(service, tenant)) == 2


async def test_bad_rules_are_refused(service: Service, tenant: str, api: httpx.AsyncClient) -> None:
    await template(api)
    for body in (
        {"trigger": "coupon_expiring"},
        {"trigger": "coupon_claimed", "before_expiry_seconds": 60},
        {"trigger": "birthday_party"},
        {"trigger": "coupon_claimed", "conditions": [{"field": "$where", "op": "eq", "value": 1}]},
        {"trigger": "coupon_claimed", "template_id": "nope"},
        {"trigger": "coupon_claimed", "channel": "email"},
    ):
        response = await api.post(
            "/rules", json={"name": "r", "channel": "sms", "template_id": "welcome", **body}
        )
        assert response.status_code in (404, 422), response.text
    assert (await api.get("/rules")).json() == []


async def test_birthday_month_greeting_once_a_year(
    service: Service, tenant: str, api: httpx.AsyncClient
) -> None:
    await policy(api, caps={"sms": {"per_day": 5, "per_week": 5}})
    await template(api, body="{{customer_name}}, {{birthday_month}}月生日快乐")
    month = datetime.now(ZoneInfo("Asia/Shanghai")).month
    born_now, born_later = customer_id(), customer_id()
    changed = [
        CustomerProfileChanged(
            customer_id=c,
            changed_fields=["birthday"],
            changed_by="ops",
            changed_at=datetime.now(UTC),
            attributes={"birthday_month": m},
        )
        for c, m in ((born_now, month), (born_later, month % 12 + 1))
    ]
    await publish(service, tenant, granted(born_now), granted(born_later), *changed)
    await consented(service, tenant, born_now)
    await eventually(
        lambda: service.db[PROFILES].count_documents(
            {"tenant": tenant, "birthday_month": {"$ne": None}}
        ),
        until=lambda n: n == 2,
    )

    await rule(api, "birthday")

    [received] = await eventually(
        lambda: sandbox(service, tenant), until=lambda found: len(found) >= 1
    )
    assert received["customer_id"] == born_now
    assert received["content"]["body"] == f"会员, {month}月生日快乐"
    # A later sweep finds the message sent and adds nothing.
    reach = reach_of(service.runtime)
    assert (
        await birthdays.sweep(reach.campaigns, reach.audience, reach.messages, datetime.now(UTC))
        == 0
    )
    assert await service.db[SCHEDULED].count_documents({"tenant": tenant}) == 0
    assert len(await sandbox(service, tenant)) == 1


async def test_an_erased_customer_is_forgotten(
    service: Service, tenant: str, api: httpx.AsyncClient
) -> None:
    await policy(api, caps={"sms": {"per_day": 5, "per_week": 5}})
    await template(api)
    await rule(api, "coupon_claimed")
    lin = customer_id()
    await publish(service, tenant, granted(lin))
    await consented(service, tenant, lin)
    await publish(service, tenant, claimed(lin, "cp-erase", 1_000))
    await eventually(lambda: sandbox(service, tenant, lin), until=lambda found: len(found) == 1)

    await publish(service, tenant, CustomerErased(customer_id=lin, erased_at=datetime.now(UTC)))

    await eventually(lambda: sandbox(service, tenant, lin), until=lambda found: found == [])
    [message] = await service.db[MESSAGES].find({"tenant": tenant, "customer_id": lin}).to_list()
    assert message["erased"] is True and "content" not in message and "variables" not in message
    assert await service.db[CONSENTS].count_documents({"tenant": tenant, "customer_id": lin}) == 0
