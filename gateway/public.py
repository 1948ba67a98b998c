"""The few reach routes the outside world calls without a console login: a customer's
click on a tracked link, and providers' delivery reports. Each is forwarded with no tenant
and no actor: the reach service takes the tenant from what it can verify (the link's MAC,
the report URL's secret token, the receipt's signature), never from the caller. Matched
before the authenticated proxy, and only these exact routes: any other method or path
under /api/v1/reach still needs authentication."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from gateway.deps import SettingsDep, UpstreamDep
from gateway.proxy import (
    API_PREFIX,
    FORWARDED_REQUEST_HEADERS,
    client_response,
    upstream_headers,
    upstream_request,
)
from gateway.upstream import Upstream

DOMAIN = "reach"
PREFIX = f"{API_PREFIX}/{DOMAIN}"
#: What the webhook receiver signs its receipts with; no other route gets these.
SIGNATURE_HEADERS = frozenset({"x-reach-timestamp", "x-reach-signature"})

router = APIRouter()


@router.get(PREFIX + "/r/{link_id}", include_in_schema=False)
async def tracked_link(
    link_id: str, request: Request, upstream: UpstreamDep, settings: SettingsDep
) -> Response:
    return await _forward(request, upstream, settings)


@router.post(PREFIX + "/receipts/aliyun-sms/{tenant}/{token}", include_in_schema=False)
async def aliyun_sms_receipts(
    tenant: str, token: str, request: Request, upstream: UpstreamDep, settings: SettingsDep
) -> Response:
    return await _forward(request, upstream, settings)


@router.post(PREFIX + "/receipts/aliyun-sms/{token}", include_in_schema=False)
async def deployment_aliyun_sms_receipts(
    token: str, request: Request, upstream: UpstreamDep, settings: SettingsDep
) -> Response:
    return await _forward(request, upstream, settings)


@router.post(PREFIX + "/receipts/webhook/{tenant}", include_in_schema=False)
async def webhook_receipts(
    tenant: str, request: Request, upstream: UpstreamDep, settings: SettingsDep
) -> Response:
    return await _forward(request, upstream, settings, extra_headers=SIGNATURE_HEADERS)


async def _forward(
    request: Request,
    upstream: Upstream,
    settings: SettingsDep,
    *,
    extra_headers: frozenset[str] = frozenset(),
) -> Response:
    base = settings.upstreams()[DOMAIN]
    public_prefix = request.scope.get("root_path", "") + PREFIX
    passed = FORWARDED_REQUEST_HEADERS | extra_headers
    headers = upstream_headers(request, None, public_prefix, passed)
    call = await upstream_request(request, base, DOMAIN, headers)
    answer = await upstream.send(call, service=DOMAIN)
    return await client_response(answer, base, public_prefix)
