"""The partner request signature. Pure: no I/O.

A partner signs each request with its secret:

    signature = hex(HMAC-SHA256(secret, canonical))
    canonical = METHOD "\n" PATH[?QUERY] "\n" TIMESTAMP "\n" NONCE "\n" hex(SHA-256(body))

and sends `X-Partner-Key`, `X-Timestamp` (Unix seconds), `X-Nonce` (16-64 characters, never
reused) and `X-Signature`. The gateway refuses a timestamp outside the allowed window and a
nonce it has seen, so a captured request cannot be sent again; the body hash binds the
payload, the path and method bind what is done.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

KEY_HEADER = "X-Partner-Key"
TIMESTAMP_HEADER = "X-Timestamp"
NONCE_HEADER = "X-Nonce"
SIGNATURE_HEADER = "X-Signature"
NONCE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
SIGNATURE_PATTERN = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class SignedRequest:
    method: str
    #: The path as sent, with its query string if any (`/api/v1/coupon/x?y=1`).
    target: str
    timestamp: str
    nonce: str
    body: bytes


def canonical(request: SignedRequest) -> str:
    body_hash = hashlib.sha256(request.body).hexdigest()
    return "\n".join(
        (request.method.upper(), request.target, request.timestamp, request.nonce, body_hash)
    )


def sign(secret: str, request: SignedRequest) -> str:
    return hmac.new(secret.encode(), canonical(request).encode(), hashlib.sha256).hexdigest()


def signature_matches(secret: str, request: SignedRequest, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, request), signature)


def timestamp_problem(timestamp: str, now: float, window_seconds: float) -> str | None:
    """Why the timestamp is refused, or None when it is fresh."""
    if not timestamp.isdigit() or len(timestamp) > 12:
        return f"{TIMESTAMP_HEADER} must be Unix seconds"
    if abs(now - int(timestamp)) > window_seconds:
        return f"the request is older or newer than {int(window_seconds)} s; sign it again"
    return None
