"""A generic signed webhook: POSTs the message as JSON to one URL, signed so the receiver can
trust it: `X-Reach-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` with
`X-Reach-Timestamp` (unix seconds; receivers refuse old ones) and `Idempotency-Key` (the
message id). 2xx accepts, 408/429/5xx and timeouts are transient, other 4xx are not."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx

from services.reach.providers.base import (
    Accepted,
    Outbound,
    PermanentFailure,
    Provider,
    TransientFailure,
)

TRANSIENT_STATUS = {408, 425, 429}


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


class WebhookProvider(Provider):
    name = "webhook"

    def __init__(self, *, url: str, secret: str, timeout: float = 5.0) -> None:
        self.url, self.secret = url, secret
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)))

    async def send(self, message: Outbound) -> Accepted:
        body = json.dumps(_payload(message), ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Reach-Timestamp": timestamp,
            "X-Reach-Signature": signature(self.secret, timestamp, body),
            "Idempotency-Key": message.message_id,
        }
        try:
            response = await self.http.post(self.url, content=body, headers=headers)
        except httpx.TransportError as exc:
            raise TransientFailure(f"webhook_unreachable: {type(exc).__name__}") from exc
        return _accepted(response, message)

    async def close(self) -> None:
        await self.http.aclose()


def _payload(message: Outbound) -> dict[str, object]:
    return {
        "message_id": message.message_id,
        "tenant": message.tenant,
        "customer_id": message.customer_id,
        "channel": str(message.channel),
        "address": message.address,
        "content": message.content.model_dump(exclude_none=True),
        "campaign_id": message.campaign_id,
    }


def _accepted(response: httpx.Response, message: Outbound) -> Accepted:
    status = response.status_code
    if 200 <= status < 300:
        try:
            ref = str(response.json().get("id") or message.message_id)
        except (ValueError, AttributeError):
            ref = message.message_id
        return Accepted(provider_ref=ref)
    reason = f"webhook_{status}"
    if status >= 500 or status in TRANSIENT_STATUS:
        raise TransientFailure(reason)
    raise PermanentFailure(reason)
