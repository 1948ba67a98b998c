"""Per-request context carried implicitly: tenant and request id.

Set at the edge (HTTP middleware, event consumer) and read by logging and the outbox, so
every log line and event carries the tenant without threading it through every call.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from typing import Annotated

from fastapi import Depends, Header

from servicekit.errors import InvalidInput
from servicekit.headers import TENANT_HEADER

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
