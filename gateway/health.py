"""Health of the whole system as the gateway sees it: every service's own readiness."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import aiohttp
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from gateway.deps import SettingsDep, UpstreamDep
from gateway.upstream import Probe, Upstream
from servicekit.context import current_request_id
from servicekit.headers import REQUEST_ID_HEADER

ServiceStatus = Literal["ok", "not_ready", "unavailable"]

router = APIRouter(include_in_schema=False)


@router.get("/livez")
async def livez() -> dict[str, str]:
    """Liveness: the gateway's process answers. Asks nothing of the services, so a fault
    downstream never gets the gateway restarted."""
    return {"status": "ok"}


@router.get("/healthz")
async def healthz(upstream: UpstreamDep, settings: SettingsDep) -> JSONResponse:
    """Every service's readiness, asked concurrently: 200 when all are ready, else 503
    with the state of each."""
    return await system_health(upstream, settings.upstreams(), probe_timeout=settings.probe_timeout)


@router.get("/readyz")
async def readyz(upstream: UpstreamDep) -> JSONResponse:
    """The gateway's own readiness: its upstream pool is open. A service that is down
    answers its own routes with 503; it does not take every gateway replica out of
    rotation (that view is /healthz)."""
    ready = not upstream.closed
    return JSONResponse({"status": "ok" if ready else "closing"}, status_code=200 if ready else 503)


async def system_health(
    upstream: Upstream, upstreams: dict[str, str], *, probe_timeout: float
) -> JSONResponse:
    states = await asyncio.gather(
        *(
            service_health(upstream, base, probe_timeout=probe_timeout)
            for base in upstreams.values()
        )
    )
    services = dict(zip(upstreams, states, strict=True))
    healthy = all(state["status"] == "ok" for state in services.values())
    body = {"status": "ok" if healthy else "degraded", "services": services}
    return JSONResponse(body, status_code=200 if healthy else 503)


async def service_health(upstream: Upstream, base: str, *, probe_timeout: float) -> dict[str, Any]:
    """One service's `/readyz`: its verdict, with its own account of why as the detail."""
    try:
        answer = await upstream.probe(
            f"{base}/readyz",
            within=probe_timeout,
            headers={REQUEST_ID_HEADER: current_request_id.get() or ""},
        )
    except (aiohttp.ClientError, TimeoutError) as exc:
        return {"status": "unavailable", "detail": {"error": _failure(exc)}}
    status: ServiceStatus = "ok" if answer.status == 200 else "not_ready"
    return {"status": status, "detail": _json_or_status(answer)}


def _json_or_status(answer: Probe) -> Any:
    try:
        return answer.json()
    except ValueError:
        return {"http_status": answer.status}


def _failure(exc: Exception) -> str:
    """Why a probe got no answer, in words that do not depend on the HTTP library."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "unreachable"
    if isinstance(exc, TimeoutError):
        return "timed_out"
    return "broken_off"
