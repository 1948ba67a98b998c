"""Routes callers outside reach the service without a console login, through the
gateway's public router (gateway/public.py): tracked links clicked by customers, and
providers' delivery reports. None of them trusts a tenant header: the tenant comes from
what the service can check — a link's MAC, a report URL's token, a receipt's signature."""

from __future__ import annotations

import hmac
import json
import time
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from servicekit.clock import utcnow
from servicekit.context import TENANT_PATTERN, current_tenant
from servicekit.errors import DomainError, InvalidInput, NotFound
from services.reach.api.deps import ReachDep
from services.reach.domain import links
from services.reach.providers.webhook import signature
from services.reach.service.receipts import Receipts
from services.reach.service.wiring import Reach

router = APIRouter(tags=["public"])
TenantInPath = Annotated[str, Path(pattern=TENANT_PATTERN.pattern)]
#: A signed receipt older (or newer) than this is refused: a replay window.
SIGNATURE_WINDOW = 300
MOST_REPORTS = 1000
#: What Alibaba Cloud expects back from a report URL that took the reports.
ALIYUN_OK = {"code": 0, "msg": "成功"}


class ReceiptRefused(DomainError):
    status = 401
    title = "The receipt's sender could not be verified"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, code="receipt_unverified")


@router.get("/r/{link_id}", response_class=RedirectResponse, status_code=302)
async def follow_link(
    link_id: Annotated[str, Path(max_length=80)], reach: ReachDep
) -> RedirectResponse:
    """A tracked link: records the click (once) and forwards to the campaign's URL."""
    message_id = links.message_of(reach.dispatcher.link_key, link_id)
    if message_id is None:
        raise NotFound("no such link", code="link_not_found")
    doc = await Receipts(reach.dispatcher.uow, reach.messages).clicked(message_id)
    return RedirectResponse(doc["link_url"], status_code=302)


class AliyunReport(BaseModel):
    """One entry of Alibaba Cloud SMS's delivery report push (SmsReport)."""

    out_id: str = Field(pattern=r"^msg_[0-9a-f]{24}$")
    success: bool
    err_code: str | None = Field(None, max_length=64)
    err_msg: str | None = Field(None, max_length=200)
    report_time: str | None = Field(None, max_length=40)


@router.post("/receipts/aliyun-sms/{tenant}/{token}")
async def aliyun_receipts(
    tenant: TenantInPath,
    token: Annotated[str, Path(min_length=16, max_length=64)],
    reports: list[AliyunReport],
    reach: ReachDep,
) -> dict[str, object]:
    """Alibaba Cloud SMS delivery reports for a tenant's own account, pushed to the URL
    `PUT /providers/sms` answered. Alibaba does not sign them, so the URL's token (compared
    in constant time) is what proves the sender; only the tenant's own messages are
    touched. Answers as the platform expects (`code: 0`)."""
    store = reach.providers.store
    if store is None or not await store.receipt_token_holds(tenant, "sms", token):
        raise ReceiptRefused("unknown delivery-report URL")
    current_tenant.set(tenant)
    receipts = Receipts(reach.dispatcher.uow, reach.messages)
    for report in reports[:MOST_REPORTS]:
        await _apply(receipts, tenant, report)
    return ALIYUN_OK


@router.post("/receipts/aliyun-sms/{token}")
async def deployment_aliyun_receipts(
    token: Annotated[str, Path(min_length=16, max_length=64)],
    reports: list[AliyunReport],
    reach: ReachDep,
) -> dict[str, object]:
    """Reports for the deployment's own Alibaba Cloud account, which sends for every tenant
    without one of its own: the token is the deployment's (`REACH_ALIYUN_SMS_RECEIPT_TOKEN`),
    and each report's tenant is its message's."""
    expected = reach.settings.aliyun_sms_receipt_token
    if not expected or not hmac.compare_digest(expected.encode(), token.encode()):
        raise ReceiptRefused("unknown delivery-report URL")
    receipts = Receipts(reach.dispatcher.uow, reach.messages)
    for report in reports[:MOST_REPORTS]:
        doc = await reach.messages.by_id(report.out_id)
        if doc is not None:
            await _apply(receipts, doc["tenant"], report)
    return ALIYUN_OK


async def _apply(receipts: Receipts, tenant: str, report: AliyunReport) -> bool:
    reason = None if report.success else f"sms_{report.err_code}"
    return await receipts.report(tenant, report.out_id, report.success, reason, utcnow())


class WebhookReceipt(BaseModel):
    message_id: str = Field(pattern=r"^msg_[0-9a-f]{24}$")
    status: Annotated[str, Field(pattern=r"^(delivered|failed)$")]
    reason: str | None = Field(None, max_length=300)
    at: datetime | None = None


RECEIPTS = TypeAdapter(list[WebhookReceipt])


@router.post("/receipts/webhook/{tenant}")
async def webhook_receipts(
    tenant: TenantInPath,
    request: Request,
    reach: ReachDep,
    timestamp: Annotated[str, Header(alias="X-Reach-Timestamp", max_length=20)] = "",
    signed: Annotated[str, Header(alias="X-Reach-Signature", max_length=100)] = "",
) -> dict[str, int]:
    """Receipts from the webhook receiver, signed as reach signs what it sends it
    (`v1=HMAC-SHA256(secret, "<timestamp>.<body>")`) with the tenant's webhook secret (or
    the deployment's); a stale timestamp or a wrong signature is refused."""
    body = await request.body()
    await _verify(reach, tenant, timestamp, signed, body)
    try:
        receipts = RECEIPTS.validate_python(json.loads(body or b"null"))
    except (ValueError, ValidationError) as exc:
        raise InvalidInput(f"a JSON list of receipts: {str(exc)[:300]}", field="body") from None
    current_tenant.set(tenant)
    service = Receipts(reach.dispatcher.uow, reach.messages)
    recorded = 0
    for r in receipts[:MOST_REPORTS]:
        delivered = r.status == "delivered"
        recorded += await service.report(
            tenant, r.message_id, delivered, r.reason, r.at or utcnow()
        )
    return {"recorded": recorded}


async def _verify(reach: Reach, tenant: str, timestamp: str, signed: str, body: bytes) -> None:
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > SIGNATURE_WINDOW:
        raise ReceiptRefused("X-Reach-Timestamp is missing or outside the window")
    secrets = await _webhook_secrets(reach, tenant)
    if not any(hmac.compare_digest(signature(s, timestamp, body), signed) for s in secrets):
        raise ReceiptRefused("the signature does not match")


async def _webhook_secrets(reach: Reach, tenant: str) -> list[str]:
    store = reach.providers.store
    found = [reach.settings.webhook_secret] if reach.settings.webhook_secret else []
    if store is not None:
        for doc in await store.of_tenant(tenant):
            if doc["provider"] == "webhook":
                found.append(store.secrets(doc)["secret"])
    return found
