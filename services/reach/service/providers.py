"""The providers this deployment sends through, built once from settings, each guarded
(retries, circuit breaker); which one serves a channel is configuration."""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase

from servicekit.errors import InvalidInput
from servicekit.mongo import Document
from services.reach.domain.breaker import CircuitBreaker
from services.reach.domain.channels import Channel
from services.reach.providers.aliyun_sms import AliyunSmsProvider
from services.reach.providers.base import Provider
from services.reach.providers.guarded import Guarded
from services.reach.providers.sandbox import SandboxProvider
from services.reach.providers.smtp import SmtpProvider
from services.reach.providers.webhook import WebhookProvider
from services.reach.settings import ReachSettings


class Providers:
    def __init__(self, guarded: dict[str, Guarded], by_channel: dict[Channel, str]) -> None:
        self.guarded = guarded
        self.by_channel = by_channel

    def for_channel(self, channel: Channel) -> Guarded:
        return self.guarded[self.by_channel.get(channel, "sandbox")]

    async def close(self) -> None:
        for provider in self.guarded.values():
            await provider.close()

    @classmethod
    def from_settings(cls, settings: ReachSettings, db: AsyncDatabase[Document]) -> Providers:
        built: list[Provider] = [SandboxProvider(db), *_configured(settings)]
        guarded = {
            p.name: Guarded(
                p,
                attempts=settings.provider_attempts,
                backoff=settings.provider_backoff_seconds,
                breaker=CircuitBreaker(
                    threshold=settings.breaker_threshold,
                    cool_down=settings.breaker_cool_down_seconds,
                ),
            )
            for p in built
        }
        by_channel: dict[Channel, str] = {}
        for channel, name in settings.channel_providers.items():
            if channel not in set(Channel) or name not in guarded:
                configured = sorted(guarded)
                raise InvalidInput(
                    f"channel {channel!r} cannot use provider {name!r} (configured: {configured})",
                    field="REACH_CHANNEL_PROVIDERS",
                )
            by_channel[Channel(channel)] = name
        return cls(guarded, by_channel)


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
