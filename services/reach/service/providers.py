"""The providers messages go out through. The deployment's are built once from settings;
a tenant may configure its own per channel (`PUT /providers/{channel}`), which then serves
that tenant's channel instead. Each is guarded (retries, its own circuit breaker), so one
tenant's failing SMS account does not open the circuit of another's."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass

from pymongo.asynchronous.database import AsyncDatabase

from servicekit.errors import InvalidInput
from servicekit.mongo import Document
from servicekit.sealing import Sealer, derive_key
from services.reach.domain.breaker import CircuitBreaker
from services.reach.domain.channels import Channel
from services.reach.providers.aliyun_sms import AliyunSmsProvider
from services.reach.providers.base import Provider
from services.reach.providers.call_task import CallTaskProvider
from services.reach.providers.guarded import Guarded
from services.reach.providers.sandbox import SandboxProvider
from services.reach.providers.smtp import SmtpProvider
from services.reach.providers.webhook import WebhookProvider
from services.reach.settings import ReachSettings
from services.reach.store.providers import ProviderStore

#: Providers that take no configuration: the deployment's instance serves every tenant.
SHARED = ("sandbox", "call_task")


def sealer_from(settings: ReachSettings) -> Sealer:
    if settings.sealing_keys:
        keys = {kid: base64.b64decode(key) for kid, key in settings.sealing_keys.items()}
        return Sealer(keys, settings.sealing_active_key or sorted(keys)[-1])
    # development: a key derived from the service secret
    return Sealer({"k0": derive_key(settings.secret_key, "reach:providers:k0")}, "k0")


@dataclass
class _Cached:
    until: float
    doc: Document | None


class Providers:
    def __init__(
        self,
        guarded: dict[str, Guarded],
        by_channel: dict[Channel, str],
        *,
        store: ProviderStore | None = None,
        guard: Callable[[Provider], Guarded] = Guarded,
        timeout: float = 5.0,
        cache_seconds: float = 5.0,
    ) -> None:
        self.guarded = guarded
        self.by_channel = by_channel
        self.store = store
        self._guard = guard
        self._timeout = timeout
        self._cache_seconds = cache_seconds
        self._configs: dict[tuple[str, Channel], _Cached] = {}
        self._built: dict[tuple[str, Channel], tuple[int, Guarded]] = {}
        self._retired: list[Guarded] = []

    def for_channel(self, channel: Channel) -> Guarded:
        """The deployment's provider for `channel`."""
        default = "call_task" if channel is Channel.CALL else "sandbox"
        return self.guarded[self.by_channel.get(channel, default)]

    async def for_tenant(self, tenant: str, channel: Channel) -> Guarded:
        """The tenant's own provider for `channel` when it set one, else the deployment's."""
        doc = await self._config(tenant, channel)
        if doc is None:
            return self.for_channel(channel)
        if doc["provider"] in SHARED:
            return self.guarded[doc["provider"]]
        built = self._built.get((tenant, channel))
        if built is not None and built[0] == doc["version"]:
            return built[1]
        guarded = self._guard(self._build(doc))
        if built is not None:
            # Another send may still hold the old one: it is closed when the service stops.
            self._retired.append(built[1])
        self._built[(tenant, channel)] = (doc["version"], guarded)
        return guarded

    def forget(self, tenant: str, channel: Channel) -> None:
        """A config changed here: read it again on the next send."""
        self._configs.pop((tenant, channel), None)

    async def _config(self, tenant: str, channel: Channel) -> Document | None:
        if self.store is None:
            return None
        cached = self._configs.get((tenant, channel))
        now = time.monotonic()
        if cached is not None and cached.until > now:
            return cached.doc
        doc = await self.store.get(tenant, str(channel))
        self._configs[(tenant, channel)] = _Cached(now + self._cache_seconds, doc)
        return doc

    def _build(self, doc: Document) -> Provider:
        assert self.store is not None
        values = {**doc["settings"], **self.store.secrets(doc)}
        values.pop("provider", None)
        kind, timeout = doc["provider"], self._timeout
        if kind == "smtp":
            return SmtpProvider(**values, timeout=timeout)
        if kind == "webhook":
            return WebhookProvider(url=values["url"], secret=values["secret"], timeout=timeout)
        if kind == "aliyun_sms":
            return AliyunSmsProvider(**values, timeout=timeout)
        raise ValueError(f"unknown provider {kind!r}")

    async def close(self) -> None:
        tenants = [g for _, g in self._built.values()]
        for provider in [*self.guarded.values(), *tenants, *self._retired]:
            await provider.close()

    @classmethod
    def from_settings(cls, settings: ReachSettings, db: AsyncDatabase[Document]) -> Providers:
        def guard(provider: Provider) -> Guarded:
            return Guarded(
                provider,
                attempts=settings.provider_attempts,
                backoff=settings.provider_backoff_seconds,
                breaker=CircuitBreaker(
                    threshold=settings.breaker_threshold,
                    cool_down=settings.breaker_cool_down_seconds,
                ),
            )

        built: list[Provider] = [SandboxProvider(db), CallTaskProvider(db), *_configured(settings)]
        guarded = {p.name: guard(p) for p in built}
        by_channel: dict[Channel, str] = {}
        for channel, name in settings.channel_providers.items():
            if channel not in set(Channel) or name not in guarded:
                configured = sorted(guarded)
                raise InvalidInput(
                    f"channel {channel!r} cannot use provider {name!r} (configured: {configured})",
                    field="REACH_CHANNEL_PROVIDERS",
                )
            by_channel[Channel(channel)] = name
        return cls(
            guarded,
            by_channel,
            store=ProviderStore(db, sealer_from(settings)),
            guard=guard,
            timeout=settings.provider_timeout_seconds,
            cache_seconds=settings.provider_config_cache_seconds,
        )


def _configured(settings: ReachSettings) -> list[Provider]:
    timeout = settings.provider_timeout_seconds
    found: list[Provider] = []
    if settings.smtp_host:
        found.append(
            SmtpProvider(
                host=settings.smtp_host,
                port=settings.smtp_port,
                sender=settings.smtp_sender,
                username=settings.smtp_username,
                password=settings.smtp_password,
                starttls=settings.smtp_starttls,
                timeout=timeout,
            )
        )
    if settings.webhook_url:
        found.append(
            WebhookProvider(
                url=settings.webhook_url, secret=settings.webhook_secret, timeout=timeout
            )
        )
    if settings.aliyun_sms_access_key_id:
        found.append(
            AliyunSmsProvider(
                endpoint=settings.aliyun_sms_endpoint,
                access_key_id=settings.aliyun_sms_access_key_id,
                access_key_secret=settings.aliyun_sms_access_key_secret,
                timeout=timeout,
            )
        )
    return found
