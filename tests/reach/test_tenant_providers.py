"""Providers per tenant: a tenant's admin sets its own provider for a channel (secrets sealed
at rest, masked when shown), its messages go through it while other tenants keep the
deployment's; receipts its webhook receiver signs with the tenant's secret are taken, badly
signed or stale ones refused."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from cryptography.exceptions import InvalidTag

from services.reach.providers.webhook import signature
from services.reach.service.wiring import reach_of
from services.reach.store.providers import PROVIDERS
from tests.reach.peers import WebhookPeer
from tests.reach.support import Service, consent, customer_id, policy, sandbox, send, template
from tests.support.servers import serve

SECRET = "tenant-own-webhook-secret-1"
ADMIN = {"X-Actor-Roles": "admin"}
EMAIL = {"subject": "会员日", "body": "{{customer_name}}, 专属券已到账"}


@pytest.fixture(scope="module")
def overrides() -> dict[str, Any]:
    return {"consumer_groups": set(), "provider_attempts": 1}


@pytest.fixture(scope="module")
async def peer() -> AsyncIterator[tuple[WebhookPeer, str]]:
    hook = WebhookPeer(SECRET)
    async with serve(hook.app()) as url:
        yield hook, f"{url}/hook"


async def test_a_tenants_own_provider_serves_it_and_only_it(
    service: Service, tenant: str, api: httpx.AsyncClient, peer: tuple[WebhookPeer, str]
) -> None:
    hook, url = peer
    other = f"{tenant}-b"
    config = {"provider": "webhook", "url": url, "secret": SECRET}

    assert (await api.put("/providers/email", json=config)).status_code == 403
    for channel, bad in (
        ("email", {"provider": "webhook", "url": url}),
        ("email", {"provider": "webhook", "url": "ftp://x", "secret": SECRET}),
        ("email", {"provider": "pigeon"}),
        ("sms", {"provider": "smtp", "host": "mail.example", "sender": "a@b.example"}),
        (
            "call",
            {
                "provider": "aliyun_sms",
                "access_key_id": "LTAI5tTest",
                "access_key_secret": "x" * 20,
            },
        ),
        ("fax", config),
    ):
        refused = await api.put(f"/providers/{channel}", json=bad, headers=ADMIN)
        assert refused.status_code == 422, (channel, bad, refused.text)
    saved = await api.put("/providers/email", json=config, headers=ADMIN)
    assert saved.status_code == 200, saved.text
    assert saved.json()["secrets"] == {"secret": "****-1"} and saved.json()["source"] == "tenant"

    listed = {p["channel"]: p for p in (await api.get("/providers")).json()}
    assert listed["email"]["provider"] == "webhook" and listed["email"]["settings"]["url"] == url
    assert listed["email"]["secrets"] == {"secret": "****-1"}
    assert listed["sms"] == {**listed["sms"], "provider": "sandbox", "source": "deployment"}
    assert listed["call"]["provider"] == "call_task"
    stored = await service.db[PROVIDERS].find_one({"tenant": tenant, "channel": "email"})
    assert SECRET not in str(stored) and SECRET.encode() not in stored["secrets"]["secret"]["c"]
    store = reach_of(service.runtime).providers.store
    assert store is not None and store.secrets(stored) == {"secret": SECRET}
    with pytest.raises(InvalidTag):  # sealed to this tenant: copied to another, it won't open
        store.secrets({**stored, "tenant": other})

    await policy(api, caps={"email": {"per_day": 5, "per_week": 5}})
    await template(api, "vip", "email", **EMAIL)
    lin = customer_id()
    await consent(service, tenant, lin, channel="email")
    mine = await send(api, lin, channel="email", template_id="vip")
    assert mine["status"] == "sent" and mine["provider"] == "webhook"
    assert [r["customer_id"] for r in hook.received if r["tenant"] == tenant] == [lin]

    headers = {"X-Tenant-Id": other, "X-Actor-Id": "ops-2"}
    async with httpx.AsyncClient(base_url=service.url, headers=headers) as other_api:
        await policy(other_api, caps={"email": {"per_day": 5, "per_week": 5}})
        await template(other_api, "vip", "email", **EMAIL)
        wang = customer_id()
        await consent(service, other, wang, channel="email")
        theirs = await send(other_api, wang, channel="email", template_id="vip")
        assert theirs["status"] == "delivered" and theirs["provider"] == "sandbox"
        assert [m["customer_id"] for m in await sandbox(service, other)] == [wang]
        assert (await other_api.put("/providers/email", json=config)).status_code == 403

    assert (await api.delete("/providers/email", headers=ADMIN)).status_code == 204
    assert (await api.delete("/providers/email", headers=ADMIN)).status_code == 404
    back = await send(api, customer_id(), channel="email", template_id="vip")
    assert back["status"] == "suppressed"  # no consent; but the provider is the deployment's again
    listed = {p["channel"]: p for p in (await api.get("/providers")).json()}
    assert listed["email"]["source"] == "deployment"


async def test_webhook_receipts_must_be_signed_with_the_tenants_secret(
    service: Service, tenant: str, api: httpx.AsyncClient, peer: tuple[WebhookPeer, str]
) -> None:
    _, url = peer
    saved = await api.put(
        "/providers/email",
        json={"provider": "webhook", "url": url, "secret": SECRET},
        headers=ADMIN,
    )
    assert saved.status_code == 200
    await policy(api, caps={"email": {"per_day": 5, "per_week": 5}})
    await template(api, "vip", "email", **EMAIL)
    lin, wang = customer_id(), customer_id()
    await consent(service, tenant, lin, wang, channel="email")
    first = (await send(api, lin, channel="email", template_id="vip"))["message_id"]
    second = (await send(api, wang, channel="email", template_id="vip"))["message_id"]
    receipts = [
        {"message_id": first, "status": "delivered"},
        {"message_id": second, "status": "failed", "reason": "mailbox_full"},
        {"message_id": "msg_" + "0" * 24, "status": "delivered"},
    ]
    body = json.dumps(receipts).encode()

    async def post(secret: str, at: int, payload: bytes = body) -> httpx.Response:
        stamp = str(at)
        headers = {
            "X-Reach-Timestamp": stamp,
            "X-Reach-Signature": signature(secret, stamp, body),
        }
        async with httpx.AsyncClient(base_url=service.url) as bare:  # no tenant header
            return await bare.post(f"/receipts/webhook/{tenant}", content=payload, headers=headers)

    now = int(time.time())
    for bad in (
        await post("not-the-tenants-secret-x", now),
        await post(SECRET, now - 3600),
        await post(SECRET, now, body.replace(b'"failed"', b'"delivered"')),  # tampered
    ):
        assert bad.status_code == 401 and bad.json()["code"] == "receipt_unverified", bad.text
    assert (await api.get(f"/messages/{first}")).json()["status"] == "sent"

    taken = await post(SECRET, now)
    assert taken.status_code == 200 and taken.json() == {"recorded": 2}
    assert (await api.get(f"/messages/{first}")).json()["status"] == "delivered"
    assert (await api.get(f"/messages/{second}")).json()["reason"] == "mailbox_full"
    assert (await post(SECRET, now)).json() == {"recorded": 0}  # repeated: nothing changes
