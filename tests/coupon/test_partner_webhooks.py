"""Webhooks to partners, against a local partner server that checks every signature
(HMAC-SHA256 over timestamp "." body, recomputed here) and fails the first attempts: a
given partner offer and a used coupon from a partner's code are reported, retried with
backoff until taken, given up after the last attempt (listed as failed) and replayed."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from tests.coupon.support import Service, batch_spec, iso, now, ok, running_batches
from tests.support.servers import serve
from tests.support.waiting import eventually

PARTNER = "ptn_" + "d4" * 12
ATTEMPTS = 4


@dataclass
class PartnerServer:
    """The partner's end: refuses bad signatures, answers 503 `fail_first` times per delivery."""

    secret: str = ""
    fail_first: int = 2
    url: str = ""
    attempts: Counter[str] = field(default_factory=Counter)
    received: list[dict[str, Any]] = field(default_factory=list)
    forged: int = 0
    #: The last request that passed: (timestamp, body, signature).
    last_signed: tuple[str, bytes, str] = ("", b"", "")

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hooks/coupons")
        async def hook(request: Request) -> Response:
            body = await request.body()
            timestamp = request.headers["X-Webhook-Timestamp"]
            expected = hmac.new(
                self.secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
            ).hexdigest()
            if not hmac.compare_digest("v1=" + expected, request.headers["X-Webhook-Signature"]):
                self.forged += 1
                return Response(status_code=401)
            self.last_signed = (timestamp, body, request.headers["X-Webhook-Signature"])
            delivery = request.headers["X-Webhook-Id"]
            self.attempts[delivery] += 1
            if self.attempts[delivery] <= self.fail_first:
                return Response(status_code=503)
            self.received.append(json.loads(body))
            return Response(status_code=204)

        return app


@pytest.fixture(scope="module")
async def partner_server() -> AsyncIterator[PartnerServer]:
    server = PartnerServer()
    async with serve(server.app()) as url:
        server.url = f"{url}/hooks/coupons"
        yield server


@pytest.fixture(scope="module")
def overrides() -> dict[str, Any]:
    return {
        "partner_webhook_attempts": ATTEMPTS,
        "partner_webhook_backoff_seconds": 0.05,
        "partner_webhook_max_backoff_seconds": 0.2,
        "partner_webhook_poll_seconds": 0.05,
    }


@pytest.fixture
async def hooked(
    api: httpx.AsyncClient, partner_server: PartnerServer
) -> AsyncIterator[PartnerServer]:
    """The partner's webhook registered in the test's tenant; the server knows the secret."""
    view = await ok(api.put(f"/partners/{PARTNER}/webhook", json={"url": partner_server.url}))
    partner_server.secret = view["secret"]
    partner_server.fail_first = 2
    partner_server.received.clear()
    yield partner_server


@pytest.fixture
async def partner(service: Service, tenant: str) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"X-Tenant-Id": tenant, "X-Actor-Kind": "partner", "X-Actor-Id": PARTNER}
    async with httpx.AsyncClient(base_url=service.url, headers=headers, timeout=60) as client:
        yield client


async def offer(partner: httpx.AsyncClient, count: int = 5) -> dict[str, Any]:
    body = {
        "title": "咖啡券",
        "value": 1_500,
        "valid_from": iso(now() - timedelta(hours=1)),
        "valid_until": iso(now() + timedelta(days=7)),
        "count": count,
    }
    return await ok(partner.post("/partner/offers", json=body), 201)


async def deliveries(api: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    return await ok(api.get("/partner-webhooks/deliveries", params=params))


async def test_a_given_offer_is_reported_signed_after_failed_attempts(
    api: httpx.AsyncClient, partner: httpx.AsyncClient, hooked: PartnerServer
) -> None:
    given_offer = await offer(partner)
    give = await ok(
        api.post(f"/partner-offers/{given_offer['id']}/gives", json={"customer_id": "c-1"}), 201
    )
    await eventually(lambda: hooked.received, within=15)
    [report] = hooked.received
    assert report["type"] == "partner_offer.given" and report["partner_id"] == PARTNER
    assert report["data"]["offer_id"] == given_offer["id"] and report["data"]["number"] == 1
    assert give["id"]  # the give itself answered at once, before any delivery
    [delivery] = await eventually(
        lambda: deliveries(api, state="delivered"), until=lambda d: len(d) == 1
    )
    assert delivery["attempts"] == 3 and delivery["id"] == report["id"]
    assert hooked.attempts[delivery["id"]] == 3 and hooked.forged == 0


async def test_a_used_coupon_from_a_partners_code_is_reported(
    api: httpx.AsyncClient, partner: httpx.AsyncClient, hooked: PartnerServer
) -> None:
    hooked.fail_first = 1
    batch_id = (await running_batches(api, batch_spec()))["main"]
    quota = {"partner_id": PARTNER, "codes": 5, "direct_issues": 0}
    await ok(api.post(f"/batches/{batch_id}/partner-quotas", json=quota))
    taken = await ok(partner.post(f"/partner/batches/{batch_id}/codes", json={"count": 1}), 201)
    code = taken["codes"][0]
    coupon = await ok(
        api.post("/codes/redemptions", json={"customer_id": "c-9", "code": code["code"]}), 201
    )
    line = {"line_id": "1", "product_id": "p-1", "price": 12_000, "quantity": 1}
    order = {"order_id": "o-9", "lines": [line]}
    await ok(api.post(f"/coupons/{coupon['id']}/lock", json={"customer_id": "c-9", "order": order}))
    await ok(api.post("/orders/o-9/confirm"))

    await eventually(lambda: hooked.received, within=30)
    [report] = hooked.received
    assert report["type"] == "coupon.redeemed"
    data = report["data"]
    assert data["coupon_id"] == coupon["id"] and data["via"] == "code"
    assert data["code_id"] == code["code_id"] and data["discount"] == 1_000
    assert code["code"] not in json.dumps(report)


async def test_a_delivery_gives_up_after_the_last_attempt_and_is_replayed(
    api: httpx.AsyncClient, partner: httpx.AsyncClient, hooked: PartnerServer
) -> None:
    hooked.fail_first = 1_000
    given_offer = await offer(partner)
    await ok(
        api.post(f"/partner-offers/{given_offer['id']}/gives", json={"customer_id": "c-2"}), 201
    )
    [failed] = await eventually(lambda: deliveries(api, state="failed"), within=15)
    assert failed["attempts"] == ATTEMPTS and failed["last_error"] == "answered 503"
    assert hooked.attempts[failed["id"]] == ATTEMPTS

    hooked.fail_first = 0
    replayed = await ok(api.post(f"/partner-webhooks/deliveries/{failed['id']}/replay"))
    assert replayed["state"] == "pending" and replayed["attempts"] == 0
    await eventually(lambda: hooked.received, within=15)
    assert [r["id"] for r in hooked.received] == [failed["id"]]
    again = await api.post(f"/partner-webhooks/deliveries/{failed['id']}/replay")
    assert again.status_code in (404, 422)


async def test_a_rotated_secret_signs_the_next_delivery(
    api: httpx.AsyncClient, partner: httpx.AsyncClient, hooked: PartnerServer
) -> None:
    old = hooked.secret
    rotated = await ok(
        api.put(f"/partners/{PARTNER}/webhook", json={"url": hooked.url, "rotate_secret": True})
    )
    assert rotated["secret"] != old and rotated["secret_version"] == 2
    hooked.fail_first = 0
    hooked.secret = rotated["secret"]
    given_offer = await offer(partner)
    give = f"/partner-offers/{given_offer['id']}/gives"
    await ok(api.post(give, json={"customer_id": "c-3"}), 201)
    await eventually(lambda: hooked.received, within=15)
    timestamp, body, signature = hooked.last_signed
    with_old = hmac.new(old.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    assert signature != "v1=" + with_old.hexdigest() and hooked.forged == 0
    bad_url = await api.put(f"/partners/{PARTNER}/webhook", json={"url": "not a url"})
    assert bad_url.status_code == 422
