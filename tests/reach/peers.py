"""Local peers the reach providers are tested against: a real SMTP server (aiosmtpd), and
HTTP servers that check requests the way the real receivers do — the webhook's HMAC
signature, Alibaba Cloud SMS's RPC signature — written here from the published formats,
independently of the code under test."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


@dataclass
class Inbox:
    """What the SMTP peer received; `refuse` makes it answer RCPT with that code."""

    messages: list[Message] = field(default_factory=list)
    refuse: dict[str, int] = field(default_factory=dict)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        code = self.refuse.get(address)
        if code:
            return f"{code} mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"


def smtp_peer(inbox: Inbox, port: int) -> Controller:
    return Controller(inbox, hostname="127.0.0.1", port=port)


@dataclass
class WebhookPeer:
    secret: str
    received: list[dict[str, Any]] = field(default_factory=list)
    #: Statuses to answer with before accepting (a flaky receiver).
    fail_with: list[int] = field(default_factory=list)
    calls: int = 0

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> JSONResponse:
            self.calls += 1
            body = await request.body()
            timestamp = request.headers.get("X-Reach-Timestamp", "0")
            expected = (
                "v1="
                + hmac.new(
                    self.secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256
                ).hexdigest()
            )
            if not hmac.compare_digest(expected, request.headers.get("X-Reach-Signature", "")):
                return JSONResponse({"error": "bad signature"}, status_code=401)
            if abs(time.time() - int(timestamp)) > 300:
                return JSONResponse({"error": "stale"}, status_code=401)
            if self.fail_with:
                return JSONResponse({"error": "busy"}, status_code=self.fail_with.pop(0))
            payload = await request.json()
            self.received.append(
                {**payload, "idempotency_key": request.headers.get("Idempotency-Key")}
            )
            return JSONResponse({"id": f"hook-{len(self.received)}"})

        return app


def aliyun_encode(value: str) -> str:
    """Alibaba Cloud's POP encoding: URL-encode, then + as %20, * as %2A, %7E as ~."""
    return (
        urllib.parse.quote_plus(value).replace("+", "%20").replace("*", "%2A").replace("%7E", "~")
    )


def aliyun_signature(secret: str, method: str, params: dict[str, str]) -> str:
    query = "&".join(f"{aliyun_encode(k)}={aliyun_encode(params[k])}" for k in sorted(params))
    to_sign = f"{method}&{aliyun_encode('/')}&{aliyun_encode(query)}"
    return base64.b64encode(
        hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    ).decode()


@dataclass
class SmsPeer:
    """Answers like dysmsapi's SendSms: checks the signature and the required parameters."""

    key_id: str
    secret: str
    received: list[dict[str, str]] = field(default_factory=list)
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    calls: int = 0

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/")
        async def send_sms(request: Request) -> JSONResponse:
            self.calls += 1
            params = dict(
                urllib.parse.parse_qsl((await request.body()).decode(), keep_blank_values=True)
            )
            signature = params.pop("Signature", "")
            if params.get("AccessKeyId") != self.key_id:
                return JSONResponse(
                    {"Code": "InvalidAccessKeyId.NotFound", "Message": "no key"}, 404
                )
            if signature != aliyun_signature(self.secret, "POST", params):
                return JSONResponse(
                    {"Code": "SignatureDoesNotMatch", "Message": "bad signature"}, 400
                )
            if self.answers:
                status, body = self.answers.pop(0)
                return JSONResponse(body, status_code=status)
            self.received.append(params)
            return JSONResponse(
                {
                    "Code": "OK",
                    "Message": "OK",
                    "BizId": f"biz{len(self.received)}",
                    "RequestId": "r",
                }
            )

        return app
