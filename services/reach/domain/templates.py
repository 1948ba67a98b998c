"""Templates (消息模板): per channel, with `{{variable}}` placeholders, validated against the
channel's limits, previewed with a sample customer, and versioned (a campaign pins one).

Pure: no I/O."""

from __future__ import annotations

import math
import re
from datetime import datetime

from pydantic import BaseModel, Field

from services.reach.domain.channels import Channel

PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")

#: The variables a template may use, with the longest value each may take: validation
#: checks a template against the channel's limits with every variable at its longest.
VARIABLES: dict[str, int] = {
    "customer_name": 20,
    "coupon_amount": 10,
    "coupon_expiry": 16,
    "tier_name": 20,
    "points": 10,
    "store_name": 20,
    "birthday_month": 2,
    "note": 200,
    #: A tracked link (click receipts): the service's short redirect URL.
    "link": 60,
}

#: SMS: one segment holds 70 characters, a long message 67 per segment; carriers refuse
#: more than this in all (signature included).
SMS_MAX = 500
SMS_SEGMENT = 70
SMS_LONG_SEGMENT = 67
SIGN_NAME = re.compile(r"^[\w\u4e00-\u9fff]{2,12}$")

#: Mini-program subscription message field kinds and the longest value each accepts.
SUBSCRIPTION_FIELD_LIMITS = {
    "thing": 20,
    "number": 32,
    "letter": 32,
    "symbol": 5,
    "character_string": 32,
    "time": 30,
    "date": 30,
    "amount": 12,
    "phone_number": 17,
    "car_number": 8,
    "name": 10,
    "phrase": 5,
}
SUBSCRIPTION_FIELD = re.compile(r"^([a-z_]+?)(\d{1,2})$")

TEXT_LIMITS: dict[Channel, dict[str, int]] = {
    Channel.EMAIL: {"subject": 200, "body": 20_000},
    Channel.PUSH: {"title": 40, "body": 200},
    Channel.WECHAT: {"body": 2_000},
    Channel.CALL: {"body": 1_000},
}


class Content(BaseModel):
    """What a template says. Which parts a channel needs: sms `body` + `sign_name`; email
    `subject` + `body`; push `title` + `body`; wechat and call `body`; subscription_message
    `platform_template_id` + `fields` (+ `page`)."""

    subject: str | None = Field(None, max_length=400)
    title: str | None = Field(None, max_length=200)
    body: str | None = Field(None, max_length=20_000)
    sign_name: str | None = Field(None, max_length=20)
    platform_template_id: str | None = Field(None, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    fields: dict[str, str] = Field(default_factory=dict, max_length=20)
    page: str | None = Field(None, max_length=200)

    def texts(self) -> dict[str, str]:
        """Every rendered part, by name (fields as `fields.<key>`)."""
        parts = {k: getattr(self, k) for k in ("subject", "title", "body") if getattr(self, k)}
        parts.update({f"fields.{k}": v for k, v in self.fields.items()})
        return parts


class Template(BaseModel):
    tenant: str
    template_id: str
    channel: Channel
    name: str
    version: int = Field(ge=1)
    content: Content
    #: Values used when a send has none for a variable (e.g. customer_name -> "会员").
    defaults: dict[str, str] = Field(default_factory=dict)
    updated_by: str
    updated_at: datetime


class TemplateProblem(BaseModel):
    field: str
    reason: str


class Rendered(BaseModel):
    content: Content
    #: SMS segments the carrier will bill (0 for other channels).
    segments: int = 0


class MissingVariable(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(f"no value for variable {name!r}")
        self.name = name


def variables_of(content: Content) -> set[str]:
    return {m for text in content.texts().values() for m in PLACEHOLDER.findall(text)}


def validate(channel: Channel, content: Content, defaults: dict[str, str]) -> list[TemplateProblem]:
    """Every reason the template cannot be used on `channel`; empty when it can."""
    problems = [
        TemplateProblem(field="content", reason=f"unknown variable {{{{{name}}}}}")
        for name in sorted(variables_of(content) - VARIABLES.keys())
    ]
    problems += [
        TemplateProblem(field=f"defaults.{k}", reason="not a template variable")
        for k in sorted(defaults.keys() - VARIABLES.keys())
    ]
    if problems:
        return problems
    longest = _render(content, {k: "x" * n for k, n in VARIABLES.items()})
    return _channel_problems(channel, longest)


def _channel_problems(channel: Channel, content: Content) -> list[TemplateProblem]:
    if channel is Channel.SMS:
        return _sms_problems(content)
    if channel is Channel.SUBSCRIPTION_MESSAGE:
        return _subscription_problems(content)
    limits = TEXT_LIMITS[channel]
    problems = [
        TemplateProblem(field=f"content.{part}", reason="required for this channel")
        for part in limits
        if not getattr(content, part)
    ]
    for part, limit in limits.items():
        text = getattr(content, part) or ""
        if len(text) > limit:
            reason = f"at most {limit} characters with variables at their longest ({len(text)})"
            problems.append(TemplateProblem(field=f"content.{part}", reason=reason))
    return problems


def _sms_problems(content: Content) -> list[TemplateProblem]:
    problems: list[TemplateProblem] = []
    if not content.sign_name or not SIGN_NAME.fullmatch(content.sign_name):
        reason = "an SMS needs a signature of 2-12 letters or digits (shown as 【signature】)"
        problems.append(TemplateProblem(field="content.sign_name", reason=reason))
    if not content.body:
        problems.append(TemplateProblem(field="content.body", reason="required for sms"))
    length = sms_length(content)
    if length > SMS_MAX:
        reason = f"signature and body at most {SMS_MAX} characters at longest ({length})"
        problems.append(TemplateProblem(field="content.body", reason=reason))
    return problems


def _subscription_problems(content: Content) -> list[TemplateProblem]:
    problems: list[TemplateProblem] = []
    if not content.platform_template_id:
        reason = "the platform's template id is required"
        problems.append(TemplateProblem(field="content.platform_template_id", reason=reason))
    if not content.fields:
        problems.append(TemplateProblem(field="content.fields", reason="at least one field"))
    for key, value in content.fields.items():
        match = SUBSCRIPTION_FIELD.fullmatch(key)
        limit = SUBSCRIPTION_FIELD_LIMITS.get(match.group(1)) if match else None
        if limit is None:
            reason = "a field key is a kind and a number, e.g. thing1, amount2, date3"
            problems.append(TemplateProblem(field=f"content.fields.{key}", reason=reason))
        elif len(value) > limit:
            reason = f"a {match.group(1)} field holds at most {limit} characters ({len(value)})"  # type: ignore[union-attr]
            problems.append(TemplateProblem(field=f"content.fields.{key}", reason=reason))
    return problems


def sms_length(content: Content) -> int:
    return len(f"【{content.sign_name or ''}】{content.body or ''}")


def sms_segments(length: int) -> int:
    return 1 if length <= SMS_SEGMENT else math.ceil(length / SMS_LONG_SEGMENT)


def render(template: Template, values: dict[str, str]) -> Rendered:
    """The template with its variables filled in; raises `MissingVariable` for a variable
    with neither a value nor a default."""
    merged = {**template.defaults, **{k: v for k, v in values.items() if v is not None}}
    content = _render(template.content, merged)
    segments = sms_segments(sms_length(content)) if template.channel is Channel.SMS else 0
    return Rendered(content=content, segments=segments)


def _render(content: Content, values: dict[str, str]) -> Content:
    def fill(text: str | None) -> str | None:
        if text is None:
            return None
        return PLACEHOLDER.sub(lambda m: _value(values, m.group(1)), text)

    return content.model_copy(
        update={
            "subject": fill(content.subject),
            "title": fill(content.title),
            "body": fill(content.body),
            "fields": {k: fill(v) or "" for k, v in content.fields.items()},
        }
    )


def _value(values: dict[str, str], name: str) -> str:
    if name not in values:
        raise MissingVariable(name)
    return str(values[name])
