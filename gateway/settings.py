"""The gateway's settings: where each service listens and how patiently to call it.

Its own fields read `GATEWAY_...` variables (`GATEWAY_CUSTOMER_URL`); the shared ones
(`ENVIRONMENT`, `LOG_LEVEL`, `OTEL_EXPORTER_OTLP_ENDPOINT`) stay unprefixed.
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from servicekit.settings import InfraSettings, service_config

DOMAINS = ("customer", "tagging", "loyalty", "coupon", "reach")
DEV_SEALING_KEY = "dev-partner-sealing-key-change-me"


class GatewaySettings(InfraSettings):
    model_config = service_config("gateway")

    customer_url: str = "http://127.0.0.1:8101"
    tagging_url: str = "http://127.0.0.1:8102"
    loyalty_url: str = "http://127.0.0.1:8103"
    coupon_url: str = "http://127.0.0.1:8104"
    reach_url: str = "http://127.0.0.1:8105"

    upstream_connect_timeout: float = Field(2.0, gt=0)
    #: The longest a service may take to start answering (and between two body chunks).
    upstream_read_timeout: float = Field(10.0, gt=0)
    #: How many times an idempotent call is retried after its first attempt.
    upstream_retries: int = Field(2, ge=0, le=5)
    #: First pause between attempts; it doubles (with jitter) on each retry.
    upstream_retry_backoff: float = Field(0.05, ge=0)
    #: Connections kept open to all services together (the pool is shared).
    upstream_max_connections: int = Field(200, ge=1)
    #: How long /healthz and the OpenAPI merge wait for one service.
    probe_timeout: float = Field(2.0, gt=0)
    #: How long a service's OpenAPI document is reused before it is fetched again.
    openapi_cache_seconds: float = Field(30.0, ge=0)

    #: The gateway's own database: partners and the nonces they have used.
    mongodb_database: str = "gateway"
    #: Seals partners' secrets at rest; set a long random value in production.
    partner_sealing_key: str = DEV_SEALING_KEY
    #: How far a partner request's timestamp may be from the gateway's clock.
    partner_signature_window_seconds: float = Field(300.0, gt=0, le=3600)
    #: The only paths a partner's key opens.
    partner_path_prefixes: tuple[str, ...] = ("/api/v1/coupon/partner/",)

    @model_validator(mode="after")
    def _no_development_key_in_production(self) -> GatewaySettings:
        if self.environment == "production" and self.partner_sealing_key == DEV_SEALING_KEY:
            raise ValueError("set GATEWAY_PARTNER_SEALING_KEY in production")
        return self

    @field_validator("customer_url", "tagging_url", "loyalty_url", "coupon_url", "reach_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("a service URL starts with http:// or https://")
        return value.rstrip("/")

    def upstreams(self) -> dict[str, str]:
        """Each domain's service base URL, by domain name."""
        return {domain: getattr(self, f"{domain}_url") for domain in DOMAINS}
