"""Tiny stand-ins for the services, each showing one behaviour the gateway must handle."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel

from servicekit.errors import PROBLEM_JSON, problem

ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def echo_service() -> FastAPI:
    """Answers every request with what it received, as the service saw it."""
    app = FastAPI()

    @app.api_route("/{path:path}", methods=ANY_METHOD)
    async def echo(request: Request) -> JSONResponse:
        received = {
            "method": request.method,
            "raw_path": request.scope["raw_path"].decode(),
            "query": request.scope["query_string"].decode(),
            "headers": dict(request.headers),
            "body": (await request.body()).decode(),
        }
        return JSONResponse(received, headers={"x-served-by": "echo", "etag": '"v1"'})

    return app


PROBLEM = {
    "type": "about:blank",
    "title": "Conflict with the current state",
    "status": 409,
    "detail": "the batch has no coupons left",
    "code": "batch_exhausted",
}


def problem_service() -> FastAPI:
    """Refuses everything with the same problem document, as a service's domain would."""
    app = FastAPI()

    @app.api_route("/{path:path}", methods=ANY_METHOD)
    async def refuse() -> JSONResponse:
        return JSONResponse(PROBLEM, status_code=409, media_type=PROBLEM_JSON)

    return app


class FlakyService:
    """Answers `status` to the first `failures` hits on each path, then 200."""

    def __init__(self, failures: int = 1, status: int = 503) -> None:
        self.hits: Counter[str] = Counter()
        self.app = FastAPI()

        @self.app.api_route("/{path:path}", methods=ANY_METHOD)
        async def flaky(request: Request) -> JSONResponse:
            self.hits[request.url.path] += 1
            if self.hits[request.url.path] <= failures:
                return problem(status, "Unavailable", "try again", code="busy")
            return JSONResponse({"hits": self.hits[request.url.path]})


class StalledService:
    """Holds every request until the test releases it: a service slower than any timeout."""

    def __init__(self) -> None:
        self.arrived = asyncio.Event()
        self.released = asyncio.Event()
        self.app = FastAPI()

        @self.app.get("/{path:path}")
        async def stall() -> dict[str, str]:
            self.arrived.set()
            await self.released.wait()
            return {"status": "late"}


class TrickleService:
    """Sends the first part of its answer at once and the rest when the test says."""

    def __init__(self) -> None:
        self.released = asyncio.Event()
        self.app = FastAPI()

        async def parts() -> AsyncIterator[bytes]:
            yield b"first\n"
            await self.released.wait()
            yield b"second\n"

        @self.app.get("/{path:path}")
        async def trickle() -> StreamingResponse:
            return StreamingResponse(parts(), media_type="text/plain")


class ReadinessService:
    """A service's `/readyz`, ready or not as the test says."""

    def __init__(self, *, ready: bool = True) -> None:
        self.ready = ready
        self.app = FastAPI()

        @self.app.get("/readyz")
        async def readyz() -> JSONResponse:
            body = {"ready": self.ready, "checks": {"store": "ok" if self.ready else "failing"}}
            return JSONResponse(body, status_code=200 if self.ready else 503)


class Page(BaseModel):
    """Both catalogue services have a schema named `Page`: the merge must keep both."""

    items: list[str]
    next_cursor: str | None = None


class Draft(BaseModel):
    name: str


def catalogue_service(domain: str) -> tuple[FastAPI, Counter[str]]:
    """A service with a typed API (so its OpenAPI document has components and refs),
    health paths, and a count of how often its document was fetched."""
    app = FastAPI(title=f"{domain} service")
    fetched: Counter[str] = Counter()

    @app.middleware("http")
    async def count(request: Request, call_next: Any) -> Response:
        fetched[request.url.path] += 1
        return await call_next(request)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> dict[str, bool]:
        return {"ready": True}

    @app.get("/items", tags=["items"])
    async def list_items() -> Page:
        return Page(items=[domain])

    @app.post("/items", tags=["items"], status_code=201)
    async def create_item(draft: Draft) -> Draft:
        return draft

    return app, fetched
