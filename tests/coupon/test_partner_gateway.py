"""Partner exchange end to end through the real gateway: staff register a partner (its key
and secret shown once) and allocate it a quota; the partner, signing each request with
HMAC-SHA256 as the gateway requires, takes codes and issues a coupon to a customer it names
by mobile (the real customer service resolves it); a customer redeems one of the codes.
Unsigned pretenders, tampered bodies and partner calls outside the partner API are refused.
A large lot of codes streams through the gateway as CSV past its read timeout."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gateway.partners.signature import SignedRequest, sign
from services.coupon.domain.codes import is_well_formed
from services.customer.main import create_app as create_customer
from services.customer.settings import CustomerSettings
from tests.coupon.support import Service, batch_spec, ok, running_batches
from tests.gateway.harness import running_gateway
from tests.support.running import RunningService
from tests.support.servers import serve
from tests.support.settings import settings_for

Customer = RunningService[CustomerSettings]
COUPON = "/api/v1/coupon"
#: The gateway's upstream read timeout here: it applies to each read, so a lot that streams
#: may take longer as a whole; far longer than one chunk takes even on a loaded machine.
READ_TIMEOUT = 6.0
LARGE_LOT = 40_000  # about 3.5 s on a quiet 2-core machine, several times that when loaded


@pytest.fixture(scope="module")
async def customer_service(infra: Any) -> AsyncIterator[Customer]:
    settings = settings_for(CustomerSettings, infra, uuid.uuid4().hex[:10])
    app = create_customer(settings)
    async with serve(app) as url:
        yield Customer(url, app, settings)


@pytest.fixture(scope="module")
def overrides(customer_service: Customer) -> dict[str, Any]:
    # Small chunks: each must come well within the read timeout, even on a loaded machine.
    return {"customer_base_url": customer_service.url, "code_insert_chunk": 500}


@pytest.fixture
async def gateway(
    infra: Any, service: Service, customer_service: Customer
) -> AsyncIterator[httpx.AsyncClient]:
    async with running_gateway(
        coupon_url=service.url,
        customer_url=customer_service.url,
        mongodb_uri=infra.mongodb_uri,
        mongodb_database=f"gateway_{uuid.uuid4().hex[:8]}",
        # Shorter than making a large lot takes: its CSV must stream, not wait.
        upstream_read_timeout=READ_TIMEOUT,
    ) as client:
        yield client


class SigningPartner:
    """A partner platform calling the gateway with its key, signing every request."""

    def __init__(self, gateway: httpx.AsyncClient, issued: dict[str, Any]) -> None:
        self.gateway = gateway
        self.key_id = issued["partner"]["key_id"]
        self.secret = issued["secret"]
        self.id = issued["partner"]["partner_id"]

    def headers(self, method: str, target: str, body: bytes) -> dict[str, str]:
        request = SignedRequest(
            method=method, target=target, timestamp=str(int(time.time())),
            nonce=uuid.uuid4().hex, body=body,
        )  # fmt: skip
        return {
            "X-Partner-Key": self.key_id,
            "X-Timestamp": request.timestamp,
            "X-Nonce": request.nonce,
            "X-Signature": sign(self.secret, request),
            "Content-Type": "application/json",
        }

    async def post(self, path: str, payload: dict[str, Any]) -> httpx.Response:
        target = COUPON + path
        body = json.dumps(payload).encode()
        headers = self.headers("POST", target, body)
        return await self.gateway.post(target, content=body, headers=headers)


async def test_a_signed_partner_takes_codes_and_issues_by_mobile_and_a_customer_redeems(
    gateway: httpx.AsyncClient,
    api: httpx.AsyncClient,
    customer_service: Customer,
    tenant: str,
) -> None:
    staff = {"X-Tenant-Id": tenant}
    issued = await ok(
        gateway.post("/api/v1/gateway/partners", json={"name": "航空里程"}, headers=staff), 201
    )
    partner = SigningPartner(gateway, issued)
    batch_id = (await running_batches(api, batch_spec(stock=100)))["main"]
    quota = {"partner_id": partner.id, "codes": 5, "direct_issues": 2}
    await ok(gateway.post(f"{COUPON}/batches/{batch_id}/partner-quotas", json=quota, headers=staff))
    customer = await ok(
        gateway.post(
            "/api/v1/customer/customers",
            json={"display_name": "赵女士", "source_channel": "store", "mobile": "13611112222"},
            headers=staff,
        ),
        201,
    )

    taken = await ok(partner.post(f"/partner/batches/{batch_id}/codes", {"count": 3}), 201)
    assert len(taken["codes"]) == 3 and taken["codes_left"] == 2
    issue = {"mobile": "13611112222", "reference": "miles-42"}
    direct = await ok(partner.post(f"/partner/batches/{batch_id}/issues", issue), 201)
    assert direct["customer_id"] == customer["id"]
    assert direct["channel"] == f"partner:{partner.id}"
    again = await partner.post(f"/partner/batches/{batch_id}/issues", issue)
    assert again.status_code == 200 and again.json()["id"] == direct["id"]

    redeemed = await ok(
        gateway.post(
            f"{COUPON}/codes/redemptions",
            json={"customer_id": "cus-gw", "code": taken["codes"][0]["code"]},
            headers=staff,
        ),
        201,
    )
    assert redeemed["reference"] == taken["codes"][0]["code_id"]
    quotas = await ok(gateway.get(f"{COUPON}/partners/{partner.id}/quotas", headers=staff))
    assert [(q["codes_left"], q["issues_left"]) for q in quotas] == [(2, 1)]


async def test_pretenders_tampering_and_partner_calls_outside_the_partner_api_are_refused(
    gateway: httpx.AsyncClient, api: httpx.AsyncClient, tenant: str
) -> None:
    staff = {"X-Tenant-Id": tenant}
    issued = await ok(
        gateway.post("/api/v1/gateway/partners", json={"name": "咖啡"}, headers=staff), 201
    )
    partner = SigningPartner(gateway, issued)
    batch_id = (await running_batches(api, batch_spec()))["main"]
    path = f"/partner/batches/{batch_id}/codes"

    # Claiming to be the partner in headers, without its signature, makes one staff.
    pretender = {**staff, "X-Actor-Kind": "partner", "X-Actor-Id": partner.id}
    faked = await gateway.post(COUPON + path, json={"count": 1}, headers=pretender)
    assert faked.status_code == 403 and faked.json()["code"] == "partner_only"

    body = json.dumps({"count": 1}).encode()
    headers = partner.headers("POST", COUPON + path, body)
    tampered = await gateway.post(COUPON + path, content=b'{"count": 999}', headers=headers)
    assert tampered.status_code == 401

    quota = {"partner_id": partner.id, "codes": 1_000, "direct_issues": 0}
    outside = await partner.post(f"/batches/{batch_id}/partner-quotas", quota)
    assert outside.status_code == 403 and outside.json()["code"] == "partner_path"
    no_quota = await partner.post(path, {"count": 1})
    assert no_quota.status_code == 404 and no_quota.json()["code"] == "quota_not_found"


async def test_a_large_lot_streams_through_the_gateway_as_csv(
    gateway: httpx.AsyncClient, api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    batch_id = (await running_batches(api, batch_spec()))["main"]
    started = time.perf_counter()
    async with gateway.stream(
        "POST",
        f"{COUPON}/batches/{batch_id}/code-lots?format=csv",
        json={"count": LARGE_LOT},
        headers={"X-Tenant-Id": tenant},
        timeout=120,
    ) as response:
        assert response.status_code == 201
        expected = int(response.headers["X-Code-Count"])
        lines, first_codes_at = [], 0.0
        async for line in response.aiter_lines():
            lines.append(line)
            if len(lines) == 2:
                first_codes_at = time.perf_counter() - started
    elapsed = time.perf_counter() - started
    print(f"{LARGE_LOT} codes through the gateway in {elapsed:.1f}s, the first after "
          f"{first_codes_at:.1f}s (read timeout {READ_TIMEOUT}s)")  # fmt: skip
    # Streamed, not made whole and then sent: the first codes came long before the last.
    assert first_codes_at < elapsed / 2
    assert lines[0] == "code" and len(lines) - 1 == expected == LARGE_LOT
    assert len(set(lines[1:])) == LARGE_LOT and all(is_well_formed(c) for c in lines[1:])
    stored = await service.db["redeem_codes"].count_documents({"tenant": tenant})
    assert stored == LARGE_LOT
