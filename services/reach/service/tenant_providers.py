"""Tenants' own providers: configure one per channel (sealed secrets), list them masked,
and check a delivery-report token. The receipt URL for Alibaba Cloud SMS carries a token
generated here, because Alibaba does not sign its report pushes."""

from __future__ import annotations

import secrets

from servicekit.clock import utcnow
from servicekit.errors import InvalidInput
from servicekit.mongo import Document
from services.reach.domain import provider_configs as configs
from services.reach.domain.channels import Channel
from services.reach.domain.provider_configs import ProviderView
from services.reach.service.providers import Providers

RECEIPT_PATH = "/receipts/aliyun-sms"


async def configure(
    providers: Providers, tenant: str, channel: Channel, config: configs.BaseConfig, by: str
) -> Document:
    kind: str = config.provider  # type: ignore[attr-defined]
    refused = configs.refusal(channel, kind)
    if refused:
        raise InvalidInput(refused, field="provider", code="provider_not_for_channel")
    plain, hidden = configs.split(config)
    token = secrets.token_urlsafe(24) if kind == "aliyun_sms" else None
    assert providers.store is not None
    doc = await providers.store.save(
        tenant, str(channel), kind, plain, hidden, receipt_token=token, by=by, at=utcnow()
    )
    providers.forget(tenant, channel)
    return doc


def view(providers: Providers, doc: Document, public_base: str, *, reveal: bool) -> ProviderView:
    """A tenant's config as shown: secrets masked; the receipt URL in full to admins."""
    assert providers.store is not None
    shown = {k: configs.mask(v) for k, v in providers.store.secrets(doc).items()}
    token = providers.store.receipt_token(doc)
    receipt_url = None
    if token is not None:
        shown_token = token if reveal else configs.mask(token)
        receipt_url = f"{public_base.rstrip('/')}{RECEIPT_PATH}/{doc['tenant']}/{shown_token}"
    return ProviderView(
        channel=Channel(doc["channel"]),
        provider=doc["provider"],
        source="tenant",
        settings={k: v for k, v in doc["settings"].items() if k != "provider"},
        secrets=shown,
        receipt_url=receipt_url,
        version=doc["version"],
        updated_by=doc["updated_by"],
        updated_at=doc["updated_at"],
    )


async def listing(
    providers: Providers, tenant: str, public_base: str, *, reveal: bool
) -> list[ProviderView]:
    """Every channel's provider for the tenant: its own, or the deployment's it falls back to."""
    assert providers.store is not None
    own = {d["channel"]: d for d in await providers.store.of_tenant(tenant)}
    return [
        view(providers, own[str(c)], public_base, reveal=reveal)
        if str(c) in own
        else ProviderView(channel=c, provider=providers.for_channel(c).name, source="deployment")
        for c in Channel
    ]
