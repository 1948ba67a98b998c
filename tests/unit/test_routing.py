"""Routers added as flat routes (servicekit.routing.add_routes) give the app the OpenAPI
document and the behaviour FastAPI's include_router gives it: the including routers'
prefix, tags, dependencies and responses reach every route."""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Path
from pydantic import BaseModel

from servicekit.routing import add_routes


class Shelf(BaseModel):
    id: str
    books: int


async def _shop(x_shop: Annotated[str, Header()]) -> str:
    if x_shop != "north":
        raise HTTPException(403, "unknown shop")
    return x_shop


async def _audit() -> None:
    return None


def shelves() -> APIRouter:
    router = APIRouter(tags=["shelves"], responses={404: {"description": "No such shelf"}})

    @router.get("/shelves/{shelf_id}", summary="One shelf")
    async def get_shelf(shelf_id: Annotated[str, Path(pattern=r"^s_\d+$")]) -> Shelf:
        """The shelf and how many books it holds."""
        return Shelf(id=shelf_id, books=3)

    @router.post("/shelves", status_code=201, dependencies=[Depends(_audit)])
    async def add_shelf(shelf: Shelf, shop: Annotated[str, Depends(_shop)]) -> Shelf:
        return shelf

    return router


def service_router() -> APIRouter:
    router = APIRouter()
    router.include_router(shelves(), prefix="/v2", tags=["library"], dependencies=[Depends(_shop)])
    return router


def included() -> FastAPI:
    app = FastAPI(title="shop")
    app.include_router(service_router())
    return app


def flat() -> FastAPI:
    app = FastAPI(title="shop")
    add_routes(app, service_router())
    return app


def test_the_openapi_document_is_the_one_include_router_gives() -> None:
    assert flat().openapi() == included().openapi()


def test_the_routes_are_the_apps_own() -> None:
    paths = [getattr(r, "path", None) for r in flat().routes]
    assert "/v2/shelves/{shelf_id}" in paths and "/v2/shelves" in paths


async def test_requests_meet_the_inclusions_prefix_and_dependencies() -> None:
    for app in (included(), flat()):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://shop"
        ) as http:
            north = {"X-Shop": "north"}
            assert (await http.get("/v2/shelves/s_1", headers=north)).json() == {
                "id": "s_1",
                "books": 3,
            }
            assert (
                await http.get("/v2/shelves/s_1", headers={"X-Shop": "south"})
            ).status_code == 403
            assert (await http.get("/v2/shelves/bad", headers=north)).status_code == 422
            assert (await http.get("/shelves/s_1", headers=north)).status_code == 404
            created = await http.post("/v2/shelves", json={"id": "s_2", "books": 0}, headers=north)
            assert created.status_code == 201
