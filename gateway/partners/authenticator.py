"""The partner check the gateway runs before forwarding: a request carrying `X-Partner-Key`
is a partner's and must be signed; any other goes to the staff/member authenticator.

Checks in order, cheapest and least revealing first: headers well formed, timestamp fresh,
key known and active, signature right, path open to partners, and only then is the nonce
spent, so someone without the secret cannot use up a partner's nonces."""

from __future__ import annotations

import time

from fastapi import Request

from gateway.auth import Authenticator, Principal, PrincipalKind, Unauthenticated
from gateway.partners.registry import PartnerRegistry, PartnerState
from gateway.partners.signature import (
    KEY_HEADER,
    NONCE_HEADER,
    NONCE_PATTERN,
    SIGNATURE_HEADER,
    SIGNATURE_PATTERN,
    TIMESTAMP_HEADER,
    SignedRequest,
    signature_matches,
    timestamp_problem,
)
from servicekit.errors import Forbidden

PARTNER_ROLE = "partner"


class PartnerSignatureAuthenticator:
    def __init__(
        self,
        registry: PartnerRegistry,
        *,
        others: Authenticator,
        window_seconds: float,
        path_prefixes: tuple[str, ...],
    ) -> None:
        self._registry = registry
        self._others = others
        self._window = window_seconds
        self._prefixes = path_prefixes

    async def authenticate(self, request: Request) -> Principal:
        key_id = request.headers.get(KEY_HEADER)
        if key_id is None:
            return await self._others.authenticate(request)
        timestamp, nonce, signature = _signed_headers(request)
        if problem := timestamp_problem(timestamp, time.time(), self._window):
            raise Unauthenticated(problem)
        found = await self._registry.by_key(key_id)
        if found is None or found[0].state != PartnerState.ACTIVE:
            raise Unauthenticated("the partner key is unknown or suspended")
        partner, secret = found
        signed = SignedRequest(
            method=request.method,
            target=_target(request),
            timestamp=timestamp,
            nonce=nonce,
            body=await request.body(),
        )
        if not signature_matches(secret, signed, signature):
            raise Unauthenticated(f"{SIGNATURE_HEADER} does not match the request")
        if not request.url.path.startswith(self._prefixes):
            raise Forbidden("partners may call only the partner API", code="partner_path")
        if not await self._registry.first_use(key_id, nonce):
            raise Unauthenticated(f"{NONCE_HEADER} was used before", code="replayed")
        return Principal(
            tenant=partner.tenant,
            subject=partner.partner_id,
            kind=PrincipalKind.PARTNER,
            roles=frozenset({PARTNER_ROLE}),
        )


def _signed_headers(request: Request) -> tuple[str, str, str]:
    timestamp = request.headers.get(TIMESTAMP_HEADER, "")
    nonce = request.headers.get(NONCE_HEADER, "")
    signature = request.headers.get(SIGNATURE_HEADER, "").lower()
    if not NONCE_PATTERN.match(nonce):
        raise Unauthenticated(f"{NONCE_HEADER} must be 16-64 letters, digits, '-' or '_'")
    if not SIGNATURE_PATTERN.match(signature):
        raise Unauthenticated(f"{SIGNATURE_HEADER} must be a hex HMAC-SHA256")
    return timestamp, nonce, signature


def _target(request: Request) -> str:
    """The path and query exactly as the client sent them (what it signed)."""
    path = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string", b"")
    return (path + (b"?" + query if query else b"")).decode("latin-1")
