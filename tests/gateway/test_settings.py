from __future__ import annotations

import pytest

from gateway.settings import GatewaySettings


def test_service_addresses_and_limits_read_gateway_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GATEWAY_COUPON_URL", "http://coupon:8104/")
    monkeypatch.setenv("GATEWAY_UPSTREAM_READ_TIMEOUT", "3.5")
    monkeypatch.setenv("GATEWAY_UPSTREAM_RETRIES", "1")
    monkeypatch.setenv("ENVIRONMENT", "test")  # shared: read unprefixed

    settings = GatewaySettings()

    assert settings.upstreams() == {
        "customer": "http://127.0.0.1:8101",
        "tagging": "http://127.0.0.1:8102",
        "loyalty": "http://127.0.0.1:8103",
        "coupon": "http://coupon:8104",
        "reach": "http://127.0.0.1:8105",
    }
    assert settings.upstream_read_timeout == 3.5
    assert settings.upstream_retries == 1
    assert settings.environment == "test"


def test_a_service_address_must_be_http() -> None:
    with pytest.raises(ValueError, match="http"):
        GatewaySettings(customer_url="customer:8101")
