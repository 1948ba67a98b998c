"""The authentication seam and the development authenticator."""

from __future__ import annotations

import pytest

from gateway.auth import InsecureAuthenticator, Principal, PrincipalKind
from gateway.main import create_app
from tests.gateway.harness import gateway_settings, running_gateway

SEALING_KEY = "a-production-sealing-key-0123456789"


def test_the_development_authenticator_refuses_to_start_in_production() -> None:
    with pytest.raises(InsecureAuthenticator, match="production needs a real authenticator"):
        create_app(gateway_settings(environment="production", partner_sealing_key=SEALING_KEY))


async def test_production_starts_with_a_real_authenticator() -> None:
    class Real:
        async def authenticate(self, request: object) -> Principal:
            return Principal(tenant="brand-a", subject="mem_1", kind=PrincipalKind.MEMBER)

    production = {"environment": "production", "partner_sealing_key": SEALING_KEY}
    async with running_gateway(Real(), **production) as gateway:
        assert (await gateway.get("/livez")).status_code == 200


async def test_a_request_without_a_tenant_is_unauthenticated(echo_url: str) -> None:
    async with running_gateway(customer_url=echo_url) as gateway:
        response = await gateway.get("/api/v1/customer/customers")

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "unauthenticated"


async def test_a_malformed_tenant_is_refused(echo_url: str) -> None:
    async with running_gateway(customer_url=echo_url) as gateway:
        response = await gateway.get(
            "/api/v1/customer/customers", headers={"X-Tenant-Id": "Brand A/../b"}
        )

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "X-Tenant-Id"


async def test_an_unknown_domain_asks_for_authentication_first() -> None:
    # Who may not call the API does not learn which domains exist.
    async with running_gateway() as gateway:
        response = await gateway.get("/api/v1/warehouse/stock")

    assert response.status_code == 401


async def test_health_and_documents_need_no_principal() -> None:
    async with running_gateway() as gateway:
        for path in ("/livez", "/healthz", "/readyz", "/api/v1/openapi.json", "/api/v1/docs"):
            response = await gateway.get(path)
            assert response.status_code != 401, path


def test_production_refuses_the_development_sealing_key() -> None:
    with pytest.raises(ValueError, match="GATEWAY_PARTNER_SEALING_KEY"):
        gateway_settings(environment="production")
