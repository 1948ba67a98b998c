"""A tenant's own provider for a channel (its SMTP server, its Alibaba Cloud account, its
webhook), replacing the deployment's for that channel. Which fields are secrets (sealed at
rest, masked when shown), and which provider may serve which channel. Pure: no I/O."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.reach.domain.channels import Channel

HOST = r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$"
URL = r"^https?://[^\s]{1,490}$"


class BaseConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SandboxConfig(BaseConfig):
    provider: Literal["sandbox"]


class CallTaskConfig(BaseConfig):
    provider: Literal["call_task"]


class SmtpConfig(BaseConfig):
    provider: Literal["smtp"]
    host: str = Field(pattern=HOST)
    port: int = Field(25, ge=1, le=65_535)
    sender: str = Field(pattern=r"^[^@\s]{1,64}@[A-Za-z0-9.-]{1,190}$")
    username: str | None = Field(None, max_length=200)
    password: str | None = Field(None, max_length=200)
    starttls: bool = False


class WebhookConfig(BaseConfig):
    provider: Literal["webhook"]
    url: str = Field(pattern=URL)
    #: Signs what reach sends, and checks the receipts the receiver sends back.
    secret: str = Field(min_length=16, max_length=200)


class AliyunSmsConfig(BaseConfig):
    provider: Literal["aliyun_sms"]
    endpoint: str = Field("https://dysmsapi.aliyuncs.com/", pattern=URL)
    access_key_id: str = Field(pattern=r"^[A-Za-z0-9]{8,64}$")
    access_key_secret: str = Field(min_length=8, max_length=200)
    region: str = Field("cn-hangzhou", pattern=r"^[a-z0-9-]{2,40}$")


ProviderConfig = Annotated[
    SandboxConfig | CallTaskConfig | SmtpConfig | WebhookConfig | AliyunSmsConfig,
    Field(discriminator="provider"),
]

#: The fields of each provider that are secrets.
SECRETS: dict[str, frozenset[str]] = {
    "smtp": frozenset({"password"}),
    "webhook": frozenset({"secret"}),
    "aliyun_sms": frozenset({"access_key_secret"}),
}
#: The channels each provider can carry (any other: every channel).
SERVES: dict[str, frozenset[Channel]] = {
    "smtp": frozenset({Channel.EMAIL}),
    "aliyun_sms": frozenset({Channel.SMS}),
    "call_task": frozenset({Channel.CALL}),
}


def refusal(channel: Channel, provider: str) -> str | None:
    """Why `provider` cannot serve `channel`, or None when it can."""
    serves = SERVES.get(provider)
    if serves is not None and channel not in serves:
        return f"{provider} cannot carry {channel} messages"
    if channel is Channel.CALL and provider not in ("call_task", "webhook", "sandbox"):
        return "calls go to a call-centre task list (call_task) or a webhook"
    return None


def split(config: BaseConfig) -> tuple[dict[str, object], dict[str, str]]:
    """The config's plain settings and its secrets, apart."""
    secrets = SECRETS.get(config.provider, frozenset())  # type: ignore[attr-defined]
    values = config.model_dump()
    plain = {k: v for k, v in values.items() if k not in secrets}
    hidden = {k: v for k, v in values.items() if k in secrets and v}
    return plain, hidden


def mask(secret: str) -> str:
    """Enough to recognise a secret, never enough to use it."""
    return "****" + secret[-2:] if len(secret) >= 12 else "****"


class ProviderView(BaseModel):
    """A channel's provider as the console shows it: secrets masked."""

    channel: Channel
    provider: str
    #: `tenant` when the tenant configured it, `deployment` when it falls back.
    source: Literal["tenant", "deployment"]
    settings: dict[str, object] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(default_factory=dict)
    #: Where the platform pushes delivery reports (Alibaba Cloud SMS), with its token.
    receipt_url: str | None = None
    version: int | None = None
    updated_by: str | None = None
    updated_at: datetime | None = None
