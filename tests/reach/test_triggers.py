"""Triggered rules end to end over the real broker: events published as their owning
services do (coupon, tagging, loyalty, customer), consumed by reach's consumer groups, turned
into messages after the rule's delay when its conditions hold; consent kept current from the
customer service's events; an expiry reminder dropped when the coupon is used first."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from contracts.coupon import AlertRaised, CouponClaimed, CouponExpiryNoticed, CouponRedeemed
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
from servicekit.consumer import PROCESSED
from services.reach.service import birthdays
from services.reach.service.wiring import reach_of
from services.reach.store.audience import CONSENTS, PROFILES
from services.reach.store.messages import MESSAGES, SCHEDULED
from services.reach.store.teams import NOTICES
from tests.reach.peers import WebhookPeer
from tests.reach.support import Service, customer_id, policy, publish, sandbox, template
from tests.support.servers import serve
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


def noticed(
    customer: str, coupon: str, ends_in: timedelta, face_value: int = 1_000
) -> CouponExpiryNoticed:
    """As the coupon service announces a coupon about to expire (once per coupon)."""
    return CouponExpiryNoticed(
        coupon_id=coupon,
        batch_id="b1",
        campaign_id="c1",
        customer_id=customer,
        face_value=face_value,
        valid_until=datetime.now(UTC) + ends_in,
        noticed_at=datetime.now(UTC),
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
        noticed(used, "cp-used", timedelta(days=3)),
        noticed(unused, "cp-unused", timedelta(days=3)),
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


async def test_the_coupon_services_expiry_notice_sends_one_reminder_per_coupon(
    service: Service, tenant: str, api: httpx.AsyncClient
) -> None:
    await policy(api, caps={"sms": {"per_day": 5, "per_week": 5}})
    await template(api, body="您的{{coupon_amount}}元券将于{{coupon_expiry}}到期")
    await rule(api, "coupon_expiring")  # at once, on the notice
    await rule(api, "coupon_expiring", delay_seconds=86_400)  # a day on: after the end, dropped
    lin = customer_id()
    await publish(service, tenant, granted(lin))
    await consented(service, tenant, lin)

    # A claim no longer schedules a reminder from its validity: the notice does. The same
    # coupon announced twice (a repeated notice) still reminds once.
    notice = noticed(lin, "cp-soon", timedelta(hours=20), face_value=1_500)
    await publish(service, tenant, claimed(lin, "cp-soon", 1_500), notice, notice)

    [received] = await eventually(
        lambda: sandbox(service, tenant), until=lambda found: len(found) >= 1
    )
    expiry = notice.valid_until.strftime("%Y-%m-%d")
    assert received["content"]["body"] == f"您的15元券将于{expiry}到期"
    await eventually(  # both notices and the claim handled (each in its own transaction)
        lambda: service.db[PROCESSED].count_documents(
            {"tenant": tenant, "type": {"$in": [CouponExpiryNoticed.type, CouponClaimed.type]}}
        ),
        until=lambda n: n == 3,
    )
    assert await service.db[MESSAGES].count_documents({"tenant": tenant}) == 1
    await eventually(  # the sent draft goes once its round is done; the late one never came
        lambda: service.db[SCHEDULED].find({"tenant": tenant}).to_list(), until=lambda d: d == []
    )
    assert len(await sandbox(service, tenant)) == 1


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
        {"trigger": "coupon_expiring", "delay_seconds": 60, "before_expiry_seconds": 60},
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
    await eventually(  # the sent draft goes once the round that sent it is done
        lambda: service.db[SCHEDULED].count_documents({"tenant": tenant}), until=lambda n: n == 0
    )
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


@pytest.fixture(scope="module")
async def staff_hook() -> AsyncIterator[tuple[WebhookPeer, str]]:
    hook = WebhookPeer("")  # the deployment has no webhook secret here: signed with ""
    async with serve(hook.app()) as url:
        yield hook, f"{url}/hook"


def alert(alert_id: str, owner: str | None) -> AlertRaised:
    return AlertRaised(
        alert_id=alert_id,
        kind="budget",
        severity="critical",
        subject_kind="budget",
        subject_id="bud_1",
        budget_id="bud_1",
        owner=owner,
        title="预算即将用尽",
        detail="Q4 会员补贴预算已用 92%",
        measures={"used_percent": 92.0},
        at=datetime.now(UTC),
    )


async def test_a_coupon_alert_is_told_to_the_owning_teams_staff_once(
    service: Service, tenant: str, api: httpx.AsyncClient, staff_hook: tuple[WebhookPeer, str]
) -> None:
    hook, url = staff_hook
    admin = {"X-Actor-Roles": "admin"}
    growth = {
        "contacts": [
            {"kind": "email", "address": "growth-lead@brand.example", "name": "运营主管"},
            {"kind": "mobile", "address": "+8613900000001"},
            {"kind": "webhook", "address": url},
        ]
    }
    assert (await api.put("/teams/growth/contacts", json=growth)).status_code == 403
    for bad in (
        {"contacts": []},
        {"contacts": [{"kind": "email", "address": "not-an-email"}]},
        {"contacts": [{"kind": "pager", "address": "123"}]},
    ):
        refused = await api.put("/teams/growth/contacts", json=bad, headers=admin)
        assert refused.status_code == 422, refused.text
    assert (await api.put("/teams/growth/contacts", json=growth, headers=admin)).status_code == 200
    ops = {"contacts": [{"kind": "email", "address": "ops@brand.example"}]}
    assert (await api.put("/teams/ops/contacts", json=ops, headers=admin)).status_code == 200
    assert [t["team"] for t in (await api.get("/teams")).json()] == ["growth", "ops"]
    # A budget's owner (the alert's team) may be named in Chinese; a space is no part of a name.
    assert (await api.put("/teams/华东区/contacts", json=ops, headers=admin)).status_code == 200
    assert (await api.put("/teams/a b/contacts", json=ops, headers=admin)).status_code == 422
    # Staff notices are service messages: quiet hours all day and no caps change nothing,
    # and no consent is asked of staff.
    await policy(
        api,
        quiet_start="00:00",
        quiet_end="23:59",
        caps={"email": {"per_day": 0, "per_week": 0}, "sms": {"per_day": 0, "per_week": 0}},
    )

    raised = alert("alr_1", "growth")
    await publish(service, tenant, raised, raised, alert("alr_2", "unknown-team"))

    await eventually(
        lambda: service.db[PROCESSED].count_documents({"tenant": tenant, "type": AlertRaised.type}),
        until=lambda n: n == 3,
    )
    growth_messages = await eventually(
        lambda: api.get("/customers/team:growth/messages"),
        until=lambda r: len(r.json()) == 3 and all(m["status"] != "reserved" for m in r.json()),
    )
    by_channel = {m["channel"]: m for m in growth_messages.json()}
    assert set(by_channel) == {"email", "sms", "webhook"}
    for message in by_channel.values():
        assert message["purpose"] == "service" and message["recipient"] == "staff"
        assert message["alert_id"] == "alr_1" and message["status"] in ("sent", "delivered")
    assert by_channel["email"]["content"]["subject"] == "[预警/critical] 预算即将用尽"
    [told] = [r for r in hook.received if r["tenant"] == tenant]
    assert told["customer_id"] == "team:growth" and told["channel"] == "webhook"
    assert "Q4 会员补贴预算已用 92%" in told["content"]["body"]
    assert told["idempotency_key"] == by_channel["webhook"]["message_id"]
    told_by_sandbox = {
        ("team:growth", "growth-lead@brand.example"),
        ("team:growth", "+8613900000001"),
        ("team:ops", "ops@brand.example"),  # no such team: the ops team hears of it
    }
    await eventually(
        lambda: sandbox(service, tenant),
        until=lambda found: {(m["customer_id"], m["address"]) for m in found} == told_by_sandbox,
    )
    await eventually(
        lambda: service.db[NOTICES].count_documents({"tenant": tenant}), until=lambda n: n == 0
    )
    assert len((await api.get("/customers/team:growth/messages")).json()) == 3


async def test_a_staff_notice_is_retried_until_its_webhook_takes_it(
    service: Service, tenant: str, api: httpx.AsyncClient, staff_hook: tuple[WebhookPeer, str]
) -> None:
    hook, url = staff_hook
    oncall = {"contacts": [{"kind": "webhook", "address": url}]}
    admin = {"X-Actor-Roles": "admin"}
    assert (await api.put("/teams/oncall/contacts", json=oncall, headers=admin)).status_code == 200
    # More failures in a row than one send's retries: the notice waits and goes again.
    hook.fail_with = [503] * (service.settings.provider_attempts + 1)

    await publish(service, tenant, alert("alr_retry", "oncall"))

    waiting = await eventually(
        lambda: service.db[NOTICES].find_one({"tenant": tenant}),
        until=lambda doc: doc is not None and doc["attempts"] == 1,
    )
    assert waiting["last_failure"] == "webhook_503"
    [message] = (
        await eventually(
            lambda: api.get("/customers/team:oncall/messages"), until=lambda r: len(r.json()) == 1
        )
    ).json()
    assert message["status"] == "sent" and message["alert_id"] == "alr_retry"
    assert hook.fail_with == []
    assert [r["message_id"] for r in hook.received if r["tenant"] == tenant] == [
        message["message_id"]
    ]
