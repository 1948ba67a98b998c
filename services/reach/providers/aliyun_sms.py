"""SMS through Alibaba Cloud's SMS API (dysmsapi `SendSms`, version 2017-05-25), RPC style:
the request's parameters are signed with HMAC-SHA1 over the canonical query string
(signature version 1.0). The template is one registered with the carrier (`TemplateCode` =
the template's `platform_template_id`), filled by the platform from `TemplateParam`; our
message id travels as `OutId`, so delivery reports name it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime
from urllib.parse import quote

import httpx

from services.reach.providers.base import (
    Accepted,
    Outbound,
    PermanentFailure,
    Provider,
    TransientFailure,
)

#: Codes that say "not now" (flow control, busy), worth a retry; any other non-OK is final.
TRANSIENT_CODES = {
    "isv.BUSINESS_LIMIT_CONTROL",
    "Throttling",
    "ServiceUnavailable",
    "isp.SYSTEM_ERROR",
}


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as the API wants it: spaces as %20, `*` as %2A, `~` kept."""
    return quote(value, safe="~")


def string_to_sign(method: str, params: dict[str, str]) -> str:
    canonical = "&".join(
        f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items())
    )
    return f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"


def sign(secret: str, method: str, params: dict[str, str]) -> str:
    digest = hmac.new(f"{secret}&".encode(), string_to_sign(method, params).encode(), hashlib.sha1)
    return base64.b64encode(digest.digest()).decode()


class AliyunSmsProvider(Provider):
    name = "aliyun_sms"
    address_kind = "mobile"

    def __init__(
        self,
        *,
        endpoint: str,
        access_key_id: str,
        access_key_secret: str,
        region: str = "cn-hangzhou",
        timeout: float = 5.0,
    ) -> None:
        self.endpoint = endpoint
        self.access_key_id, self.access_key_secret, self.region = (
            access_key_id,
            access_key_secret,
            region,
        )
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)))

    def signed_params(self, message: Outbound, *, now: datetime | None = None) -> dict[str, str]:
        if not message.address:
            raise PermanentFailure("no_mobile")
        params = {
            "AccessKeyId": self.access_key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "OutId": message.message_id,
            "PhoneNumbers": message.address,
            "RegionId": self.region,
            "SignName": message.content.sign_name or "",
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "TemplateCode": message.content.platform_template_id or "",
            "TemplateParam": json.dumps(
                message.variables, ensure_ascii=False, separators=(",", ":")
            ),
            "Timestamp": (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": "2017-05-25",
        }
        params["Signature"] = sign(self.access_key_secret, "POST", params)
        return params

    async def send(self, message: Outbound) -> Accepted:
        params = self.signed_params(message)
        try:
            response = await self.http.post(self.endpoint, data=params)
        except httpx.TransportError as exc:
            raise TransientFailure(f"sms_unreachable: {type(exc).__name__}") from exc
        if response.status_code >= 500:
            raise TransientFailure(f"sms_http_{response.status_code}")
        return _accepted(response)

    async def close(self) -> None:
        await self.http.aclose()


def _accepted(response: httpx.Response) -> Accepted:
    try:
        answer = response.json()
    except ValueError:
        raise TransientFailure(f"sms_unreadable_answer_{response.status_code}") from None
    code = str(answer.get("Code", ""))
    if code == "OK":
        return Accepted(provider_ref=str(answer.get("BizId", "")))
    reason = f"sms_{code}: {str(answer.get('Message', ''))[:150]}"
    if code in TRANSIENT_CODES:
        raise TransientFailure(reason)
    raise PermanentFailure(reason)
