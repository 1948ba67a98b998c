"""Request body limits: an oversized payload is refused with 413 before a route reads it."""

from __future__ import annotations

import json
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit.errors import PROBLEM_JSON

DEFAULT_MAX_BODY = 1024 * 1024


class BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Checks Content-Length, and counts the bytes of a body sent without one. Paths may
    have their own limit (an import upload is larger than a profile); a `{name}` segment
    in a path matches any one segment (`/tags/{tag_id}/batch`)."""

    def __init__(
        self, app: ASGIApp, *, default: int = DEFAULT_MAX_BODY, paths: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.default = default
        self.exact = {p: n for p, n in (paths or {}).items() if "{" not in p}
        self.patterns = [(_pattern(p), n) for p, n in (paths or {}).items() if "{" in p]

    def limit_for(self, path: str) -> int:
        if path in self.exact:
            return self.exact[path]
        return next((n for pattern, n in self.patterns if pattern.fullmatch(path)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _refuse(send, limit)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge
            return message

        try:
            await self.app(scope, counting_receive, send)
        except BodyTooLarge:
            await _refuse(send, limit)


def _pattern(path: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)))


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps(
        {
            "type": "about:blank",
            "title": "Payload too large",
            "status": 413,
            "detail": f"the request body is over the limit of {limit} bytes",
            "code": "payload_too_large",
        }
    ).encode()
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
