"""Who is calling: the seam for authentication and roles.

The gateway asks an `Authenticator` for the request's `Principal` and forwards only what the
principal says (its tenant becomes `X-Tenant-Id`), never the client's own claim. The
development authenticator below trusts the client's header; a real one (staff sessions,
member tokens, partner signatures) replaces it through `default_authenticator`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Protocol

from fastapi import Depends, Request

from servicekit.context import current_tenant, validate_tenant
from servicekit.errors import DomainError
from servicekit.headers import TENANT_HEADER
from servicekit.settings import InfraSettings


class PrincipalKind(StrEnum):
    STAFF = "staff"
    MEMBER = "member"
    PARTNER = "partner"
    ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: whose data it may reach (tenant) and as whom."""

    tenant: str
    subject: str
    kind: PrincipalKind
    roles: frozenset[str] = field(default_factory=frozenset)


class Authenticator(Protocol):
    async def authenticate(self, request: Request) -> Principal:
        """The request's principal; raises `Unauthenticated` when it has none."""
        ...


class Unauthenticated(DomainError):
    status = 401
    title = "Authentication required"

    def __init__(self, detail: str, *, code: str = "unauthenticated") -> None:
        super().__init__(detail, code=code)


class InsecureAuthenticator(RuntimeError):
    """An authenticator meant for development was configured for production."""


#: In development every caller may do everything; roles mean something once a real
#: authenticator hands them out.
DEV_ROLES = frozenset({"admin"})


class DevTenantHeaderAuthenticator:
    """Development only: the client names its tenant in `X-Tenant-Id` and is believed."""

    def __init__(self, *, environment: str) -> None:
        if environment == "production":
            raise InsecureAuthenticator(
                "the development authenticator trusts the client's X-Tenant-Id header; "
                "production needs a real authenticator (pass one to gateway.main.create_app)"
            )

    async def authenticate(self, request: Request) -> Principal:
        tenant = request.headers.get(TENANT_HEADER)
        if not tenant:
            raise Unauthenticated(f"send the {TENANT_HEADER} header to name your tenant")
        return Principal(
            tenant=validate_tenant(tenant),
            subject="developer",
            kind=PrincipalKind.STAFF,
            roles=DEV_ROLES,
        )


def default_authenticator(settings: InfraSettings) -> Authenticator:
    """The authenticator `create_app` uses unless it is handed one."""
    return DevTenantHeaderAuthenticator(environment=settings.environment)


async def principal_of(request: Request) -> Principal:
    """The request's principal, by the app's authenticator; raises `Unauthenticated`."""
    authenticator: Authenticator = request.app.state.authenticator
    principal = await authenticator.authenticate(request)
    current_tenant.set(principal.tenant)  # so the gateway's own log lines carry it
    return principal


#: The authenticated caller of this request.
PrincipalDep = Annotated[Principal, Depends(principal_of)]
