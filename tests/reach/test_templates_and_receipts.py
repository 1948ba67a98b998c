"""Templates (validation against channel limits, preview with a sample customer, versions
pinned by campaigns), and receipts: email sent through the signed webhook provider to a local
peer, then delivered or failed by receipts, clicked through the tracked link, each published
once; Alibaba Cloud SMS delivery reports by `out_id`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from contracts import Topic
from tests.reach.peers import WebhookPeer
from tests.reach.support import Service, consent, customer_id, policy, send, template
from tests.support.events import published
from tests.support.servers import serve
from tests.support.waiting import eventually

SECRET = "whsec-reach-test"


@pytest.fixture(scope="module")
async def peer() -> AsyncIterator[tuple[WebhookPeer, str]]:
    hook = WebhookPeer(SECRET)
    async with serve(hook.app()) as url:
        yield hook, f"{url}/hook"


@pytest.fixture(scope="module")
def overrides(peer: tuple[WebhookPeer, str]) -> dict[str, Any]:
    return {
        "webhook_url": peer[1],
        "webhook_secret": SECRET,
        "channel_providers": {"email": "webhook"},
        "consumer_groups": set(),
        "public_base_url": "https://brand.example/api/v1/reach",
    }


EMAIL = {
    "subject": "{{customer_name}}, 双十一会员日",
    "body": "专属{{coupon_amount}}元券: {{link}}",
}


async def test_templates_are_checked_against_their_channel(api: httpx.AsyncClient) -> None:
    too_long = {"sign_name": "品牌商城", "body": "好" * 480 + "{{customer_name}}"}
    cases = [
        ("sms", too_long, "content.body"),
        ("sms", {"body": "hi"}, "content.sign_name"),
        ("sms", {"sign_name": "品牌商城", "body": "{{password}}"}, "content"),
        ("push", {"title": "t" * 41, "body": "b"}, "content.title"),
        ("subscription_message", {"fields": {"thing1": "x"}}, "content.platform_template_id"),
        (
            "subscription_message",
            {"platform_template_id": "t1", "fields": {"color9": "x"}},
            "content.fields.color9",
        ),
        ("email", {"body": "no subject"}, "content.subject"),
    ]
    for channel, content, field in cases:
        body = {"template_id": "t", "channel": channel, "name": "t", "content": content}
        response = await api.post("/templates", json=body)
        assert response.status_code == 422, response.text
        assert field in [e["field"] for e in response.json()["errors"]], (channel, response.json())
    assert (await api.get("/templates")).json() == []


async def test_preview_fills_in_a_sample_customer_and_counts_sms_segments(
    api: httpx.AsyncClient,
) -> None:
    await template(
        api, "long", sign_name="品牌商城", body="{{customer_name}}您好, {{store_name}}" + "好" * 60
    )
    response = await api.post(
        "/templates/long/preview", json={"variables": {"customer_name": "王先生"}}
    )
    assert response.status_code == 200, response.text
    preview = response.json()
    assert preview["rendered"]["content"]["body"].startswith("王先生您好, 南京西路店好")
    assert preview["rendered"]["segments"] == 2 and preview["sampled"] == ["store_name"]
    sampled = (await api.post("/templates/long/preview", json={})).json()
    # The template's default wins over the sample customer.
    assert sampled["rendered"]["content"]["body"].startswith("会员您好, 南京西路店")


async def test_revisions_are_new_versions_and_old_ones_stay(api: httpx.AsyncClient) -> None:
    await template(api, "welcome", "email", **EMAIL)
    revised = await api.put("/templates/welcome", json={"content": {**EMAIL, "subject": "第二版"}})
    assert revised.status_code == 200 and revised.json()["version"] == 2
    assert (await api.get("/templates/welcome")).json()["content"]["subject"] == "第二版"
    first = (await api.get("/templates/welcome", params={"version": 1})).json()
    assert first["content"]["subject"] == EMAIL["subject"]
    assert [t["version"] for t in (await api.get("/templates/welcome/versions")).json()] == [1, 2]
    assert (await api.put("/templates/nope", json={"content": EMAIL})).status_code == 404
    assert (
        await api.post(
            "/templates",
            json={"template_id": "welcome", "channel": "email", "name": "x", "content": EMAIL},
        )
    ).status_code == 409


async def test_receipts_and_clicks_are_recorded_and_published_once(
    service: Service, tenant: str, api: httpx.AsyncClient, peer: tuple[WebhookPeer, str]
) -> None:
    hook, _ = peer
    await policy(api, caps={"email": {"per_day": 5, "per_week": 5}})
    await template(api, "welcome", "email", **EMAIL)
    lin, wang = customer_id(), customer_id()
    await consent(service, tenant, lin, wang, channel="email")

    first = await send(
        api, lin, channel="email", coupon_amount="30", link_url="https://shop.example/vip"
    )
    second = await send(api, wang, channel="email")
    assert first["status"] == second["status"] == "sent" and first["provider"] == "webhook"
    got = {r["customer_id"]: r for r in hook.received}
    assert got[lin]["content"]["subject"] == "会员, 双十一会员日"
    prefix = "专属30元券: https://brand.example/api/v1/reach/r/"
    assert got[lin]["content"]["body"].startswith(prefix)
    link_id = got[lin]["content"]["body"].removeprefix(prefix)
    # The link names the message with a MAC only the service can make: not guessable from
    # the message id (which is derived from a dedupe key others may know).
    assert link_id.startswith(first["message_id"] + ".") and len(link_id) == 45

    receipts = [
        {"message_id": first["message_id"], "status": "delivered"},
        {"message_id": first["message_id"], "status": "delivered"},
        {"message_id": second["message_id"], "status": "failed", "reason": "mailbox_full"},
    ]
    recorded = [(await api.post("/receipts", json=r)).json()["recorded"] for r in receipts]
    assert recorded == [True, False, True]
    forged = [first["message_id"], link_id[:-1] + ("A" if link_id[-1] != "A" else "B")]
    for bad in forged:
        refused = await api.get(f"/r/{bad}", follow_redirects=False)
        assert refused.status_code == 404, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
    assert (await api.get(f"/messages/{first['message_id']}")).json()["clicked_at"] is None
    for _ in range(2):
        click = await api.get(f"/r/{link_id}", follow_redirects=False)
        assert click.status_code == 302 and click.headers["location"] == "https://shop.example/vip"
    second_link = hook.received[-1]["content"]["body"].rpartition("/r/")[2]
    no_link = await api.get(f"/r/{second_link}", follow_redirects=False)
    assert no_link.status_code == 404

    mine = (await api.get(f"/messages/{first['message_id']}")).json()
    assert mine["status"] == "delivered" and mine["clicked_at"] is not None
    assert (await api.get(f"/messages/{second['message_id']}")).json()["reason"] == "mailbox_full"
    events = await eventually(
        lambda: published(service.bootstrap, tenant=tenant, topic=Topic.REACH),
        until=lambda found: len(found) >= 5,
    )
    assert sorted(e.type for e in events) == [
        "reach.message_clicked.v1",
        "reach.message_delivered.v1",
        "reach.message_failed.v1",
        "reach.message_sent.v1",
        "reach.message_sent.v1",
    ]
    unknown = await api.post(
        "/receipts", json={"message_id": "msg_" + "0" * 24, "status": "delivered"}
    )
    assert unknown.status_code == 404


async def test_aliyun_delivery_reports_need_the_tenants_token(
    service: Service, tenant: str, api: httpx.AsyncClient
) -> None:
    # Alibaba's push is unsigned: the URL the tenant's sms config answers carries a secret
    # token, and a report names the tenant's own messages by out_id. Here the report is
    # for an email still `sent` (through the webhook), which it fails.
    await policy(api, caps={"email": {"per_day": 5, "per_week": 5}})
    await template(api, "welcome", "email", **EMAIL)
    lin = customer_id()
    await consent(service, tenant, lin, channel="email")
    sent = await send(api, lin, channel="email")
    config = {
        "provider": "aliyun_sms",
        "access_key_id": "LTAI5tTest01",
        "access_key_secret": "s" * 30,
    }
    configured = await api.put("/providers/sms", json=config, headers={"X-Actor-Roles": "admin"})
    assert configured.status_code == 200, configured.text
    receipt_url = configured.json()["receipt_url"]
    prefix = f"https://brand.example/api/v1/reach/receipts/aliyun-sms/{tenant}/"
    assert receipt_url.startswith(prefix)
    token = receipt_url.removeprefix(prefix)
    report = [
        {
            "out_id": sent["message_id"],
            "success": False,
            "err_code": "MOBILE_NOT_ON_SERVICE",
            "err_msg": "停机",
        }
    ]
    bare = httpx.AsyncClient(base_url=service.url)  # no tenant header: the URL is all it has
    async with bare:
        for path in (
            f"/receipts/aliyun-sms/{tenant}/{'x' * len(token)}",
            f"/receipts/aliyun-sms/other-tenant/{token}",
        ):
            refused = await bare.post(path, json=report)
            assert refused.status_code == 401, refused.text
            assert refused.json()["code"] == "receipt_unverified"
        assert (await api.get(f"/messages/{sent['message_id']}")).json()["status"] == "sent"

        response = await bare.post(f"/receipts/aliyun-sms/{tenant}/{token}", json=report)

    assert response.json() == {"code": 0, "msg": "成功"}
    after = (await api.get(f"/messages/{sent['message_id']}")).json()
    assert after["status"] == "failed" and after["reason"] == "sms_MOBILE_NOT_ON_SERVICE"
    # Saving the config again keeps the URL the platform was given.
    again = await api.put("/providers/sms", json=config, headers={"X-Actor-Roles": "admin"})
    assert again.json()["receipt_url"] == receipt_url and again.json()["version"] == 2
