"""What the loyalty routes share: path parameters, the required Idempotency-Key, and the
use cases built from the runtime."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Path

from servicekit.context import Actor, ActorDep
from servicekit.errors import Forbidden
from servicekit.runtime import RuntimeDep
from services.loyalty.domain.values import CUSTOMER_ID_PATTERN, EXTERNAL_ID_PATTERN
from services.loyalty.service.points import PointsService
from services.loyalty.service.tiers import TierService

CustomerId = Annotated[str, Path(pattern=CUSTOMER_ID_PATTERN)]
ExternalIdPath = Annotated[str, Path(pattern=EXTERNAL_ID_PATTERN)]

#: Changes of a balance name themselves with this header: it is the ledger entry's source,
#: so a retried request posts once (the kit's middleware also replays the answer).
IdempotencyKeyDep = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=8,
        max_length=255,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="names this request; the same key again posts nothing new",
    ),
]


async def points_service(runtime: RuntimeDep) -> PointsService:
    return PointsService(runtime.uow)


async def tier_service(runtime: RuntimeDep) -> TierService:
    return TierService(runtime.uow)


PointsDep = Annotated[PointsService, Depends(points_service)]
TiersDep = Annotated[TierService, Depends(tier_service)]


#: Who may act as an operator: staff through the gateway, or a service's own call.
OPERATOR_KINDS = frozenset({"staff", "system"})


async def _operator(actor: ActorDep) -> Actor:
    if actor.kind not in OPERATOR_KINDS:
        raise Forbidden(
            "only operations staff may do this (rules, adjustments, reversals, refunds)",
            code="operator_only",
        )
    return actor


#: The actor, refused unless an operator: rules, manual adjustments, direct grants,
#: write-off reversals, stored-value refunds and freezes.
OperatorDep = Annotated[Actor, Depends(_operator)]
