"""Per-request context carried implicitly: tenant and request id.

Set at the edge (HTTP middleware, event consumer) and read by logging and the outbox, so
every log line and event carries the tenant without threading it through every call.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Header, Request

from servicekit.errors import InvalidInput
from servicekit.headers import (
    ACTOR_ID_HEADER,
    ACTOR_KIND_HEADER,
    ACTOR_ROLES_HEADER,
    TENANT_HEADER,
)

TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")

current_tenant: ContextVar[str | None] = ContextVar("current_tenant", default=None)
current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)


def validate_tenant(value: str) -> str:
    if not TENANT_PATTERN.fullmatch(value):
        raise InvalidInput(
            "a tenant id is 1-63 lowercase letters, digits, '-' or '_'", field=TENANT_HEADER
        )
    return value


async def _tenant_from_header(
    x_tenant_id: Annotated[str, Header(alias=TENANT_HEADER, min_length=1, max_length=63)],
) -> str:
    tenant = validate_tenant(x_tenant_id)
    current_tenant.set(tenant)
    return tenant


#: The tenant of this request. The gateway sets the header from the authenticated
#: principal; services trust it because only the gateway reaches them.
TenantDep = Annotated[str, Depends(_tenant_from_header)]


@dataclass(frozen=True)
class Actor:
    """Who makes the request, as the gateway authenticated them. `system` when a request
    carries no actor (a service's own call, or a test without a gateway)."""

    id: str = "system"
    kind: str = "system"
    roles: frozenset[str] = field(default_factory=frozenset)

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles & set(roles))


ACTOR_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")


async def _actor_from_headers(request: Request) -> Actor:
    actor_id = request.headers.get(ACTOR_ID_HEADER, "system")
    if not ACTOR_ID_PATTERN.fullmatch(actor_id):
        raise InvalidInput("an actor id is 1-128 letters, digits or _.:@-", field=ACTOR_ID_HEADER)
    roles = request.headers.get(ACTOR_ROLES_HEADER, "")
    return Actor(
        id=actor_id,
        kind=request.headers.get(ACTOR_KIND_HEADER, "system")[:32],
        roles=frozenset(r.strip() for r in roles.split(",") if r.strip()),
    )


#: Who acts. Set by the gateway (X-Actor-Id, X-Actor-Kind, X-Actor-Roles); services use it
#: for change logs and to decide what a caller may see.
ActorDep = Annotated[Actor, Depends(_actor_from_headers)]
