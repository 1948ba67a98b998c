"""Alert routes (预警): list, read, acknowledge, resolve, and the live stream for the ops
console (server-sent events, fed from the broker by this replica's reader)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import StreamingResponse

from servicekit.clock import utcnow
from servicekit.context import ActorDep, TenantDep
from servicekit.pagination import Page, PageRequestDep
from servicekit.runtime import RuntimeDep
from services.coupon.api.deps import Id, settings_of
from services.coupon.domain.alerts import OPEN_STATES, Alert, AlertKind, AlertState
from services.coupon.service.alert_evaluator import AlertSignals, alert_service, monitoring
from services.coupon.service.alert_hub import AlertHub, StreamEvent, Subscriber
from services.coupon.service.alerts import AlertService

router = APIRouter(tags=["alerts"])
#: How long a new stream waits for this replica's reader to be positioned.
READY_WAIT_SECONDS = 10.0


async def _alerts(runtime: RuntimeDep) -> AlertService:
    return alert_service(runtime)


async def _signals(runtime: RuntimeDep) -> AlertSignals:
    return monitoring(runtime).signals


AlertsDep = Annotated[AlertService, Depends(_alerts)]
#: For routes that change what a condition depends on (a budget's amount or commitments):
#: they wake the evaluator of this replica at once.
SignalsDep = Annotated[AlertSignals, Depends(_signals)]
StateFilter = Literal["open", "raised", "acknowledged", "resolved"]


@router.get("/alerts")
async def list_alerts(
    tenant: TenantDep,
    alerts: AlertsDep,
    page: PageRequestDep,
    state: StateFilter | None = None,
    kind: AlertKind | None = None,
) -> Page[Alert]:
    """Alerts newest first; `state=open` means raised or acknowledged."""
    states = list(OPEN_STATES) if state == "open" else [AlertState(state)] if state else None
    items, cursor = await alerts.page(tenant, page, states, kind)
    return Page(items=items, next_cursor=cursor)


@router.get(
    "/alerts/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "The live stream"}},
)
async def stream_alerts(
    tenant: TenantDep,
    runtime: RuntimeDep,
    kind: Annotated[list[AlertKind] | None, Query()] = None,
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
) -> StreamingResponse:
    """Server-sent events: `alert_raised`, `alert_updated`, `alert_acknowledged`,
    `alert_resolved` as they are published (data: the contract event), each with its event
    id; a keep-alive comment every few seconds. Reconnect with `Last-Event-ID` to get what
    was missed meanwhile (recent events only: list `/alerts` after a long absence)."""
    hub = monitoring(runtime).hub
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(hub.ready.wait(), READY_WAIT_SECONDS)
    kinds = frozenset(str(k) for k in kind or ())
    sub, missed = hub.subscribe(tenant, kinds, last_event_id)
    keepalive = settings_of(runtime).alert_stream_keepalive_seconds
    return StreamingResponse(
        _events(hub, sub, missed, keepalive),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _events(
    hub: AlertHub, sub: Subscriber, missed: list[StreamEvent], keepalive: float
) -> AsyncIterator[bytes]:
    try:
        yield b": connected\n\n"  # the client knows the stream is open
        for event in missed:
            yield event.encode()
        while True:
            try:
                event = await asyncio.wait_for(sub.queue.get(), keepalive)
            except TimeoutError:
                yield b": keep-alive\n\n"
                continue
            if event is None:
                return  # fell too far behind: the client resumes from its last id
            yield event.encode()
    finally:
        hub.unsubscribe(sub)


@router.get("/alerts/{alert_id}")
async def get_alert(alert_id: Id, tenant: TenantDep, alerts: AlertsDep) -> Alert:
    return await alerts.get(tenant, alert_id)


@router.post("/alerts/{alert_id}/acknowledge")
async def acknowledge_alert(
    alert_id: Id, tenant: TenantDep, actor: ActorDep, alerts: AlertsDep
) -> Alert:
    """Someone from ops took the alert on (recorded with who and when). 409
    `alert_resolved` once it is resolved."""
    return await alerts.acknowledge(tenant, alert_id, actor.id, utcnow())


@router.post("/alerts/{alert_id}/resolve")
async def resolve_alert(
    alert_id: Id, tenant: TenantDep, actor: ActorDep, alerts: AlertsDep, signals: SignalsDep
) -> Alert:
    """Resolve by hand (a budget alert's block is lifted). If the condition still holds, the
    next evaluation raises a new alert."""
    resolved = await alerts.resolve(tenant, alert_id, actor.id, utcnow())
    if resolved.kind == AlertKind.BUDGET:
        signals.budget(tenant, resolved.subject_id)
    return resolved
