"""The gateway's public routes in front of the real reach service: a customer's click on a
tracked link and providers' delivery reports pass without a console login, the tenant taken
from what reach verifies (the link's MAC, the report URL's token, the receipt's signature),
never from the caller; anything else under /api/v1/reach still needs authentication."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from gateway.main import create_app as gateway_app
from services.reach.main import create_app as reach_app
from services.reach.providers.webhook import signature
from services.reach.settings import ReachSettings
from services.reach.store.audience import AudienceStore
from tests.gateway.harness import gateway_settings
from tests.reach.peers import WebhookPeer
from tests.support.servers import free_port, serve
from tests.support.settings import settings_for

ADMIN = {"X-Actor-Roles": "admin"}
HOOK_SECRET = "tenant-webhook-secret-for-receipts"
DEPLOYMENT_TOKEN = "deployment-report-token-7c1e"


@dataclass
class Stack:
    gateway: str
    reach: ReachSettings
    db: Any


@pytest.fixture(scope="module")
async def hook() -> AsyncIterator[str]:
    """A webhook receiver that checks reach's signature: messages it takes stay `sent`
    until a receipt says more."""
    async with serve(WebhookPeer(HOOK_SECRET).app()) as url:
        yield f"{url}/hook"


@pytest.fixture(scope="module")
async def stack(infra: Any) -> AsyncIterator[Stack]:
    port = free_port()
    settings = settings_for(
        ReachSettings,
        infra,
        uuid.uuid4().hex[:10],
        consumer_groups=set(),
        public_base_url=f"http://127.0.0.1:{port}/api/v1/reach",
        aliyun_sms_receipt_token=DEPLOYMENT_TOKEN,
    )
    app = reach_app(settings)
    async with serve(app) as reach_url:
        gateway = gateway_app(gateway_settings(reach_url=reach_url, mongodb_uri=infra.mongodb_uri))
        async with serve(gateway, port) as gateway_url:
            yield Stack(gateway_url, settings, app.state.runtime.db)


@pytest.fixture
async def console(stack: Stack, unique: str) -> AsyncIterator[httpx.AsyncClient]:
    """Staff through the gateway (the development authenticator: the tenant header)."""
    headers = {"X-Tenant-Id": f"t{unique}"}
    async with httpx.AsyncClient(base_url=f"{stack.gateway}/api/v1/reach", headers=headers) as c:
        yield c


@pytest.fixture
async def outside(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """Anyone on the internet: no credentials at all."""
    async with httpx.AsyncClient(base_url=f"{stack.gateway}/api/v1/reach") as client:
        yield client


async def sent_sms(stack: Stack, console: httpx.AsyncClient, **variables: str) -> dict[str, Any]:
    tenant = console.headers["X-Tenant-Id"]
    await console.put("/policy", json={"quiet_start": "00:00", "quiet_end": "00:00"})
    template = {"sign_name": "品牌商城", "body": "会员日专享 {{link}}"}
    body = {"template_id": "vip", "channel": "sms", "name": "vip", "content": template}
    assert (await console.post("/templates", json=body)).status_code in (201, 409)
    customer = f"cus_{uuid.uuid4().hex[:12]}"
    await AudienceStore(stack.db).record_consent(
        tenant, customer, "sms", "marketing", granted=True, at=datetime.now(UTC)
    )
    message = {
        "customer_id": customer,
        "channel": "sms",
        "purpose": "marketing",
        "template_id": "vip",
        "variables": variables,
        "dedupe_key": uuid.uuid4().hex,
    }
    response = await console.post("/messages", json=message)
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_tracked_link_redirects_anyone_and_records_the_click_once(
    stack: Stack, console: httpx.AsyncClient, outside: httpx.AsyncClient
) -> None:
    sent = await sent_sms(stack, console, link_url="https://shop.example/vip")
    body = sent["content"]["body"]
    link = body.rpartition(" ")[2]
    assert link.startswith(f"{stack.gateway}/api/v1/reach/r/{sent['message_id']}.")
    path = link.removeprefix(f"{stack.gateway}/api/v1/reach")

    for forged in (f"/r/{sent['message_id']}", path[:-2] + "xy"):
        refused = await outside.get(forged)
        assert refused.status_code == 404, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
    assert (await console.get(f"/messages/{sent['message_id']}")).json()["clicked_at"] is None

    for _ in range(2):
        click = await outside.get(path)
        assert click.status_code == 302 and click.headers["location"] == "https://shop.example/vip"
    assert (await console.get(f"/messages/{sent['message_id']}")).json()["clicked_at"] is not None

    # Only that route is public: the same path by POST, and every other path, need a login.
    assert (await outside.post(path)).status_code == 401
    assert (await outside.get(f"/messages/{sent['message_id']}")).status_code == 401
    assert (await outside.post("/receipts", json={})).status_code == 401


async def test_aliyun_reports_pass_with_the_tenants_token_only(
    stack: Stack, console: httpx.AsyncClient, outside: httpx.AsyncClient, hook: str
) -> None:
    tenant = console.headers["X-Tenant-Id"]
    # A message the tenant's provider took and has no receipt for yet (`sent`); then the
    # tenant moves its SMS to Alibaba Cloud and is given the report URL to set there.
    webhook = {"provider": "webhook", "url": hook, "secret": HOOK_SECRET}
    assert (await console.put("/providers/sms", json=webhook, headers=ADMIN)).status_code == 200
    sent = await sent_sms(stack, console)
    assert sent["status"] == "sent", sent
    config = {
        "provider": "aliyun_sms",
        "access_key_id": "LTAI5tGate01",
        "access_key_secret": "k" * 30,
    }
    configured = await console.put("/providers/sms", json=config, headers=ADMIN)
    assert configured.status_code == 200, configured.text
    receipt_url = configured.json()["receipt_url"]
    base = f"{stack.gateway}/api/v1/reach/receipts/aliyun-sms/{tenant}/"
    assert receipt_url.startswith(base)
    token = receipt_url.removeprefix(base)
    listed = {p["channel"]: p for p in (await console.get("/providers")).json()}["sms"]
    assert listed["receipt_url"] == receipt_url  # the development principal is an admin
    assert listed["secrets"] == {"access_key_secret": "****kk"}
    report = [{"out_id": sent["message_id"], "success": False, "err_code": "MOBILE_NOT_ON_SERVICE"}]

    for bad in (f"{tenant}/{'a' * len(token)}", f"someone-else/{token}"):
        # A spoofed tenant header changes nothing: the gateway drops it on public routes.
        refused = await outside.post(
            f"/receipts/aliyun-sms/{bad}", json=report, headers={"X-Tenant-Id": tenant}
        )
        assert refused.status_code == 401, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
    assert (await console.get(f"/messages/{sent['message_id']}")).json()["status"] == "sent"

    path = receipt_url.removeprefix(f"{stack.gateway}/api/v1/reach")
    taken = await outside.post(path, json=report)

    assert taken.status_code == 200 and taken.json()["code"] == 0
    after = (await console.get(f"/messages/{sent['message_id']}")).json()
    assert after["status"] == "failed" and after["reason"] == "sms_MOBILE_NOT_ON_SERVICE"


async def test_signed_webhook_receipts_pass_with_their_signature(
    stack: Stack, console: httpx.AsyncClient, outside: httpx.AsyncClient, hook: str
) -> None:
    tenant = console.headers["X-Tenant-Id"]
    config = {"provider": "webhook", "url": hook, "secret": HOOK_SECRET}
    assert (await console.put("/providers/sms", json=config, headers=ADMIN)).status_code == 200
    sent = await sent_sms(stack, console)
    assert sent["status"] == "sent", sent
    body = json.dumps([{"message_id": sent["message_id"], "status": "delivered"}]).encode()
    stamp = str(int(time.time()))

    unsigned = await outside.post(f"/receipts/webhook/{tenant}", content=body)
    assert unsigned.status_code == 401
    headers = {"X-Reach-Timestamp": stamp, "X-Reach-Signature": signature(HOOK_SECRET, stamp, body)}
    signed = await outside.post(f"/receipts/webhook/{tenant}", content=body, headers=headers)

    assert signed.status_code == 200 and signed.json() == {"recorded": 1}, signed.text


async def test_the_deployments_aliyun_reports_pass_with_its_token(
    stack: Stack, console: httpx.AsyncClient, outside: httpx.AsyncClient, hook: str
) -> None:
    webhook = {"provider": "webhook", "url": hook, "secret": HOOK_SECRET}
    assert (await console.put("/providers/sms", json=webhook, headers=ADMIN)).status_code == 200
    sent = await sent_sms(stack, console)
    report = [{"out_id": sent["message_id"], "success": True}]

    wrong = await outside.post(f"/receipts/aliyun-sms/{DEPLOYMENT_TOKEN[:-1]}x", json=report)
    assert wrong.status_code == 401 and wrong.json()["code"] == "receipt_unverified"
    taken = await outside.post(f"/receipts/aliyun-sms/{DEPLOYMENT_TOKEN}", json=report)

    assert taken.status_code == 200 and taken.json()["code"] == 0
    assert (await console.get(f"/messages/{sent['message_id']}")).json()["status"] == "delivered"
