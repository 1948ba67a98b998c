"""One error family, rendered as RFC 9457 problem+json by one handler.

The domain raises these (never an HTTP exception); `install_problem_handlers` maps them,
request validation errors and unexpected faults to problem documents.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from servicekit.headers import FORWARDED_PREFIX_HEADER

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("servicekit.errors")


class DomainError(Exception):
    """A rule of the domain refused the request. `code` is stable and machine-readable."""

    status = 422
    title = "Request refused by a business rule"

    def __init__(self, detail: str, *, code: str = "rule_violated", **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.extra = extra


class NotFound(DomainError):
    status = 404
    title = "Not found"

    def __init__(self, detail: str, *, code: str = "not_found", **extra: Any) -> None:
        super().__init__(detail, code=code, **extra)


class Conflict(DomainError):
    status = 409
    title = "Conflict with the current state"

    def __init__(self, detail: str, *, code: str = "conflict", **extra: Any) -> None:
        super().__init__(detail, code=code, **extra)


class Forbidden(DomainError):
    """The caller is known but may not do this."""

    status = 403
    title = "Forbidden"

    def __init__(self, detail: str, *, code: str = "forbidden", **extra: Any) -> None:
        super().__init__(detail, code=code, **extra)


class InvalidInput(DomainError):
    """Input that passed the schema but is still wrong (e.g. an unknown custom field)."""

    status = 422
    title = "Invalid input"

    def __init__(self, detail: str, *, field: str, code: str = "invalid", **extra: Any) -> None:
        super().__init__(detail, code=code, errors=[{"field": field, "reason": detail}], **extra)


_PREFIX_PATTERN = re.compile(r"^(/[A-Za-z0-9_.-]{1,40}){0,5}$")


def public_path(request: Request) -> str:
    """The path as the client addressed it, through the gateway when there is one."""
    prefix = request.headers.get(FORWARDED_PREFIX_HEADER, "")
    return (prefix if _PREFIX_PATTERN.fullmatch(prefix) else "") + request.url.path


def problem(
    status: int, title: str, detail: str, *, instance: str | None = None, **extra: Any
) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def _field_path(loc: tuple[Any, ...]) -> str:
    # ("body", "customer", "mobile") -> "customer.mobile"; the location kind is kept apart.
    parts = (
        [str(p) for p in loc[1:]]
        if loc and loc[0] in {"body", "query", "path", "header"}
        else [str(p) for p in loc]
    )
    return ".".join(parts) or str(loc[0] if loc else "")


def validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    return [
        {
            "field": _field_path(tuple(e["loc"])),
            "in": str(e["loc"][0]) if e["loc"] else "body",
            "reason": e["msg"],
        }
        for e in exc.errors()
    ]


async def _on_domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return problem(
        exc.status, exc.title, exc.detail, instance=public_path(request), code=exc.code, **exc.extra
    )


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return problem(
        422,
        "Invalid request",
        "The request does not match the expected schema.",
        instance=public_path(request),
        code="validation_failed",
        errors=validation_errors(exc),
    )


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "HTTP error")
    return problem(exc.status_code, title, str(exc.detail), instance=public_path(request))


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", extra={"path": request.url.path})
    detail = "The server failed; the error is logged."
    return problem(500, "Internal error", detail, instance=public_path(request))


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
